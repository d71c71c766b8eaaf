from six import text_type


def is_text(value: object) -> bool:
    return isinstance(value, text_type)
