def summarize(items):
    count = 0
    for item in items:
        count += item.size
    print("items:", count)
    return count


count = 99  # a module-level name of the same spelling: not in the function's scope
