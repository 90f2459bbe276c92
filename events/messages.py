"""The base of every message contract and its schema versioning.

Every message is a frozen ``msgspec.Struct`` encoded as a JSON object whose first field is
``"schema": <int>``: msgspec writes the class's ``tag`` there and checks it on decode. A
contract that changes shape gets a new class with the next tag; a reader decodes the union
of the versions it knows and refuses any other with reason ``schema_version``.

Unknown fields are refused (``forbid_unknown_fields``): a misspelt optional field
(``"promo_flag"``) would otherwise vanish silently. Adding a field is therefore a new
schema version, rolled out readers first (see docs/events.md).
"""

from __future__ import annotations

import msgspec

from events.errors import ContractError

SCHEMA_FIELD = "schema"


class Message(
    msgspec.Struct,
    frozen=True,
    kw_only=True,
    forbid_unknown_fields=True,
    tag_field=SCHEMA_FIELD,
    # Messages hold only str/float/int/bool/datetime and flat containers of those, so they
    # can never be part of a reference cycle; skipping GC tracking speeds batch decoding.
    gc=False,
):
    """Base of every contract.

    Subclasses declare ``tag=<schema version>, frozen=True, kw_only=True``: msgspec applies
    ``kw_only`` per class (keyword-only construction of many same-typed fields), and type
    checkers need ``frozen`` repeated on every subclass.
    """

    @classmethod
    def schema_version(cls) -> int:
        """The ``schema`` value this class encodes and accepts."""
        tag = cls.__struct_config__.tag
        if not isinstance(tag, int):
            raise TypeError(f"{cls.__name__} must declare an integer tag (schema version)")
        return tag


class Reserved(Message, tag=0, frozen=True):
    """Schema version 0, never valid.

    msgspec only insists on the ``schema`` field when it decodes a *union* of tagged types,
    so every decoder decodes ``Union[<versions>..., Reserved]``: a message without
    ``schema`` is then refused instead of silently read as the current version.
    """

    def __post_init__(self) -> None:
        raise ContractError(
            "`$.schema` 0 is reserved and never a valid schema version",
            "schema_version",
            "$.schema",
        )
