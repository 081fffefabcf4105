"""Where the HTTP server listens: HOST:PORT, [V6]:PORT, :PORT, unix:/path, or off."""

from __future__ import annotations

from collections import namedtuple


class AddressError(ValueError):
    """An --http value that names no place to listen."""


class ListenAddress(namedtuple("ListenAddress", "host port unix_path", defaults=(None, None, None))):
    """Parsed before the child is spawned: a collections.namedtuple, not typing's (see
    app.config)."""

    __slots__ = ()
    host: str | None
    """None with a port means every address (IPv4 and IPv6)."""
    port: int | None
    unix_path: str | None

    @property
    def off(self) -> bool:
        return self.port is None and self.unix_path is None


def parse_address(text: str) -> ListenAddress:
    if text.lower() == "off":
        return ListenAddress()
    if text.startswith("unix:"):
        path = text[len("unix:"):]
        if not path:
            raise AddressError(f"{text!r}: unix: needs a socket path, e.g. unix:/run/pidone.sock")
        return ListenAddress(unix_path=path)
    host, sep, port_text = text.rpartition(":")
    if not sep:
        raise AddressError(f"{text!r}: expected HOST:PORT, [V6]:PORT, :PORT, unix:/path or off")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        import ipaddress  # only here: parsed before the child starts, and rarely needed

        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise AddressError(f"{text!r}: {host!r} is not an IPv6 address") from None
    elif ":" in host:
        raise AddressError(f"{text!r}: put an IPv6 address in brackets, e.g. [::1]:{port_text}")
    # ASCII digits only, and few: str.isdigit() admits "³", which int() rejects.
    if not (port_text.isascii() and port_text.isdigit() and len(port_text) <= 5) \
            or not 0 < int(port_text) < 65536:
        raise AddressError(f"{text!r}: port must be a number from 1 to 65535")
    if host:
        check_host_name(host)
    return ListenAddress(host=host or None, port=int(port_text))


def check_host_name(host: str) -> None:
    """Raise AddressError for a host name that no resolver can be asked about: an empty or
    over-long label (".", "a..b", 64 characters), which getaddrinfo would refuse only later,
    with a UnicodeError from its IDNA encoding. ASCII names are checked by hand: the IDNA
    codec costs milliseconds to import, before the child is spawned."""
    try:
        if host.isascii():
            labels = (host[:-1] if host.endswith(".") else host).split(".")
            if not all(0 < len(label) < 64 for label in labels):
                raise UnicodeError(host)
        else:
            host.encode("idna")
    except UnicodeError:
        raise AddressError(f"{host!r} is not a valid host name: a label is empty or longer "
                           "than 63 characters") from None
