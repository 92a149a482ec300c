"""Names of generated Kubernetes objects: one table of limits, one check.

Every object name (and label value) tfspec writes, and every name a controller derives from one (a Job's
pods, a JobSet's child Jobs and pods, a TFJob's per-worker Services, the name the API server makes of a
``generateName``), is listed by the module that renders it as a :class:`GeneratedName` with the rule it
must follow; :func:`check` turns the ones that break their rule into one diagnostic per spec key.

The rules are the API server's (``k8s.io/apimachinery`` ``pkg/util/validation``): object names are
DNS-1123 subdomains (at most 253 characters), Service names DNS-1035 labels (a letter first, at most 63),
host names DNS-1123 labels (at most 63) and label values at most 63 characters of letters, digits, ``-``,
``_`` and ``.``. A ``generateName`` prefix is cut to 58 characters and 5 random ones are appended
(``k8s.io/apiserver`` ``pkg/storage/names``), so a generated name is the prefix plus 5 characters.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable

from tfspec.base.errors import Diagnostic
from tfspec.spec.loader import KeyPath

from .resolve import ResolvedSpec

__all__ = ["NameRule", "GeneratedName", "DNS1123_LABEL", "DNS1123_SUBDOMAIN", "DNS1035_LABEL", "LABEL_VALUE",
           "OBJECT_NAME", "JOB_NAME", "SERVICE_NAME", "HOST_NAME", "GENERATED_SUFFIX", "RANDOM", "generated",
           "check", "letter_first"]

# k8s.io/apiserver pkg/storage/names: maxNameLength 63, randomLength 5, MaxGeneratedNameLength 58
GENERATED_SUFFIX = 5
_GENERATED_PREFIX_MAX = 63 - GENERATED_SUFFIX
RANDOM = "abcde"  # a random part at its full length, as JobSet's webhook spells it when it checks pod names


@dataclasses.dataclass(frozen=True)
class NameRule:
    """What the API server accepts for one kind of name."""

    what: str
    max_length: int
    pattern: re.Pattern[str]
    shape: str  # what the pattern asks for, in words


_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
DNS1123_LABEL = NameRule("DNS-1123 label", 63, re.compile(rf"^{_LABEL}$"),
                         "lower-case letters, digits and '-', beginning and ending with a letter or digit")
DNS1123_SUBDOMAIN = NameRule("DNS-1123 subdomain", 253, re.compile(rf"^{_LABEL}(\.{_LABEL})*$"),
                             "lower-case letters, digits, '-' and '.', beginning and ending with a letter or digit")
DNS1035_LABEL = NameRule("DNS-1035 label", 63, re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$"),
                         "lower-case letters, digits and '-', beginning with a letter and ending with a letter "
                         "or digit")
LABEL_VALUE = NameRule("label value", 63, re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$"),
                       "letters, digits, '-', '_' and '.', beginning and ending with a letter or digit")

# The rule of each kind of name (an object's name, a Job's, a Service's, a pod's host name).
OBJECT_NAME = DNS1123_SUBDOMAIN
JOB_NAME = dataclasses.replace(DNS1123_SUBDOMAIN, what="label value (a Job's name is its pods' job-name label)",
                               max_length=63)
SERVICE_NAME = DNS1035_LABEL
HOST_NAME = DNS1123_LABEL


@dataclasses.dataclass(frozen=True)
class GeneratedName:
    """One generated name at its longest (highest index, random parts at full length).

    Attributes:
        name: the name.
        rule: what it must be.
        what: what it names, for the message (``JobSet pod name``).
        path: the spec key a too-long or malformed name is reported at (what to shorten or rename).
        hint: what to do about it.
        shown: the name as the message shows it, placeholders for the parts not known at build time
            (``<hash>``, ``<random>``); the name itself when empty.
    """

    name: str
    rule: NameRule
    what: str
    path: KeyPath
    hint: str
    shown: str = ""


def generated(prefix: str, shown: str = "") -> tuple[str, str]:
    """The longest name the API server makes of ``generateName: prefix``, and how a message shows it
    (``shown``: the prefix with placeholders, used when the prefix is not cut)."""
    cut = prefix[:_GENERATED_PREFIX_MAX]
    return cut + RANDOM, ((shown or prefix) if cut == prefix else cut) + "<random>"


def letter_first(resolved: ResolvedSpec, path: KeyPath, hint: str) -> tuple[KeyPath, str]:
    """Where a DNS-1035 name that begins with the spec's name is reported: at the spec name when that begins
    with a digit (every such name does), else at ``path`` with ``hint``."""
    if resolved.spec.name[0].isalpha():
        return path, hint
    return ("name",), "begin the spec name with a letter: Service, JobSet and TFJob names are DNS-1035 labels"


def _problem(name: GeneratedName) -> str | None:
    rule = name.rule
    shown = name.shown or name.name
    if len(name.name) > rule.max_length:
        return (f"{name.what} {shown!r} would be {len(name.name)} characters long, more than the "
                f"{rule.max_length} of a {rule.what}")
    if not rule.pattern.match(name.name):
        return f"{name.what} {shown!r} is not a valid {rule.what} ({rule.shape})"
    return None


def check(resolved: ResolvedSpec, names: Iterable[GeneratedName]) -> list[Diagnostic]:
    """The first broken name of each spec key, as one diagnostic at that key (in the order listed)."""
    out: list[Diagnostic] = []
    reported: set[KeyPath] = set()
    for name in names:
        if name.path in reported:
            continue
        message = _problem(name)
        if message is not None:
            reported.add(name.path)
            out.append(resolved.diagnostic(name.path, message, name.hint))
    return out
