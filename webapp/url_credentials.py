"""Credentials inside a URL (`https://user:password@host/`) are a secret: kept apart from the URL, encrypted.

A destination's plain options hold the URL without them; its secrets hold them under `<option>:userinfo`;
Destination.config puts them back for sending.
"""
from urllib.parse import urlsplit

SUFFIX = ":userinfo"


def secret_key(option: str) -> str:
    return option + SUFFIX


def split_userinfo(url: str) -> tuple[str, str]:
    """(the URL without credentials, the credentials or "")."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url, ""
    if "@" not in parts.netloc:
        return url, ""
    userinfo, _, hostport = parts.netloc.rpartition("@")
    start = url.find(parts.netloc)
    if start < 0:  # urlsplit dropped something it did not like (e.g. tabs); keep the URL as given
        return url, ""
    return url[:start] + hostport + url[start + len(parts.netloc):], userinfo


def join_userinfo(url: str, userinfo: str) -> str:
    if not userinfo or "://" not in url:
        return url
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{userinfo}@{rest}"


def with_userinfo(options: dict, secrets: dict) -> dict:
    """Options and secrets as one config for sending, each URL with its credentials back in it."""
    config = {**options, **{k: v for k, v in secrets.items() if not k.endswith(SUFFIX)}}
    for key, userinfo in secrets.items():
        option = key[: -len(SUFFIX)]
        if key.endswith(SUFFIX) and isinstance(config.get(option), str) and config[option]:
            config[option] = join_userinfo(config[option], userinfo)
    return config


def without_userinfo(options: dict) -> dict:
    """Options fit to show: any credentials a URL still carries (a row from before they were split) removed."""
    return {k: split_userinfo(v)[0] if isinstance(v, str) and "://" in v else v for k, v in options.items()}
