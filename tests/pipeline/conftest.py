from tests.tiny_models import square_image, tiny_image, tiny_models  # noqa: F401
