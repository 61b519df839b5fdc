"""Reading the current gin configuration."""
import gin


def query(key, default=None):
    """The value bound to ``key`` (``'train.label'``) in the current gin config, or ``default``."""
    try:
        return gin.query_parameter(key)
    except ValueError:
        return default
