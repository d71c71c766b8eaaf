def area(width, height):
    return width * height


def describe(name):
    return f"shape {name}"
