"""YAML that remembers where each value came from, so errors can name the file and line.

    doc = load("images/golden-linux.yaml")
    doc.data["base"]                 # plain dicts and lists (subclasses)
    doc.line(doc.data, "base")       # line of the value of key "base"
"""

import yaml

from pipeline.errors import GoldenError


class LineDict(dict):
    """A mapping with the source line of each key's value in `lines`."""

    line = None

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.lines = {}


class LineList(list):
    """A sequence with the source line of each item in `lines`."""

    line = None

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.lines = {}


class _Loader(yaml.SafeLoader):
    pass


def _mapping(loader, node):
    loader.flatten_mapping(node)
    out = LineDict()
    out.line = node.start_mark.line + 1
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in out:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark)
        out[key] = loader.construct_object(value_node, deep=True)
        out.lines[key] = value_node.start_mark.line + 1
    return out


def _sequence(loader, node):
    out = LineList()
    out.line = node.start_mark.line + 1
    for i, child in enumerate(node.value):
        out.append(loader.construct_object(child, deep=True))
        out.lines[i] = child.start_mark.line + 1
    return out


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _sequence)


def _timestamp(loader, node):
    """An impossible date (2027-02-30) stays text, so the field that reads it names file, line and why."""
    try:
        return yaml.SafeLoader.construct_yaml_timestamp(loader, node)
    except ValueError:
        return loader.construct_scalar(node)


_Loader.add_constructor("tag:yaml.org,2002:timestamp", _timestamp)


class Doc:
    """A loaded YAML file: `data`, and `error()` to raise a located GoldenError."""

    def __init__(self, path, data):
        self.path = str(path)
        self.data = data

    def line(self, container, key=None):
        if key is not None and hasattr(container, "lines") and key in container.lines:
            return container.lines[key]
        return getattr(container, "line", None)

    def error(self, reason, container=None, key=None, field=None):
        line = self.line(container, key) if container is not None else None
        return GoldenError(reason, file=self.path, line=line, field=field)


def parse(text, path="<string>"):
    try:
        data = yaml.load(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        raise GoldenError(f"malformed YAML: {exc.problem or exc.context}", file=path, line=line) from None
    except yaml.YAMLError as exc:
        raise GoldenError(f"malformed YAML: {exc}", file=path) from None
    return Doc(path, data)


def load(path):
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except FileNotFoundError:
        raise GoldenError("file not found", file=path) from None
    except OSError as exc:
        raise GoldenError(f"cannot read: {exc.strerror}", file=path) from None
    return parse(text, path)


_TYPE_NAMES = {str: "a string", int: "an integer", bool: "true or false", list: "a list", dict: "a mapping",
               float: "a number"}


class Fields:
    """Typed, located access to one mapping of a Doc; rejects unknown keys (typos fail loudly).

        f = Fields(doc, doc.data, "")
        name = f.get("name", str, required=True)
        f.done()                    # raises on any key nobody asked for
    """

    def __init__(self, doc, mapping, prefix=""):
        self.doc = doc
        self.prefix = prefix
        if not isinstance(mapping, dict):
            raise doc.error("must be a mapping", mapping, field=prefix or "(top level)")
        self.mapping = mapping
        self.seen = set()

    def name(self, key):
        return f"{self.prefix}.{key}" if self.prefix else str(key)

    def error(self, key, reason):
        return self.doc.error(reason, self.mapping, key if key in self.mapping else None, field=self.name(key))

    def get(self, key, types, required=False, default=None, check=None):
        self.seen.add(key)
        if key not in self.mapping or self.mapping[key] is None:
            if required:
                raise self.error(key, "is required")
            return default
        value = self.mapping[key]
        types = types if isinstance(types, tuple) else (types,)
        # YAML reads `yes`/`no` as booleans and 1 as int: be strict so a wrong type is caught.
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            wanted = " or ".join(_TYPE_NAMES.get(t, t.__name__) for t in types)
            raise self.error(key, f"must be {wanted}, not {type(value).__name__} {value!r}")
        if check:
            reason = check(value)
            if reason:
                raise self.error(key, reason)
        return value

    def sub(self, key, required=False):
        value = self.get(key, dict, required=required)
        return None if value is None else Fields(self.doc, value, self.name(key))

    def done(self):
        extra = [k for k in self.mapping if k not in self.seen]
        if extra:
            raise self.error(extra[0], "unknown field (allowed: " + ", ".join(sorted(map(str, self.seen))) + ")")
