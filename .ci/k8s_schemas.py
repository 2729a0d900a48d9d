"""Make kubeconform's schemas offline: Kubernetes' from kubernetes-validate, CRDs' from YAML.

Used by .ci/deploy-tools (see there); standard library and PyYAML only.

``k8s WHEEL VERSION OUT``: kubernetes-validate (PyPI) ships the Kubernetes JSON schemas
of each release, each kind's file referring to one shared ``/api/_definitions.json``.
kubeconform resolves no such reference on disk, so each kind's schema is rewritten
standalone: the definitions it reaches are copied into its own ``$defs``. The output is
kubeconform's layout, ``OUT/v<VERSION>-standalone-strict/<kind>-<group>-<version>.json``.

``crd OUT CRD.yaml...``: the ``openAPIV3Schema`` of each version of each
CustomResourceDefinition becomes ``OUT/<group>/<kind>_<version>.json`` (kubeconform's
``{{.Group}}/{{.ResourceKind}}_{{.ResourceAPIVersion}}`` layout), strict like the
Kubernetes ones: an object with properties and no other rule for extra keys refuses
unknown keys, so a misspelled field fails instead of being ignored.
"""

from __future__ import annotations

import json
import sys
import zipfile
from pathlib import Path
from typing import Any

import yaml

_DEFS_REF = "/api/_definitions.json#/$defs/"
_LOCAL_REF = "#/$defs/"


def _refs(node: Any, found: set[str]) -> set[str]:
    # Only string values: the apiextensions schemas have a *property* named "$ref".
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                found.add(value.rsplit("/", 1)[-1])
            else:
                _refs(value, found)
    elif isinstance(node, list):
        for value in node:
            _refs(value, found)
    return found


def _localised(node: Any) -> Any:
    if isinstance(node, dict):
        return {
            key: _LOCAL_REF + value.removeprefix(_DEFS_REF).removeprefix(_LOCAL_REF)
            if key == "$ref" and isinstance(value, str)
            else _localised(value)
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_localised(value) for value in node]
    return node


def kubernetes_schemas(wheel: Path, version: str, out: Path) -> int:
    """Write standalone strict schemas of Kubernetes ``version``; return how many."""
    prefix = f"kubernetes_validate/kubernetes-json-schema/v{version}-local-strict/"
    target = out / f"v{version}-standalone-strict"
    target.mkdir(parents=True, exist_ok=True)
    count = 0
    with zipfile.ZipFile(wheel) as archive:
        names = [n for n in archive.namelist() if n.startswith(prefix) and n.endswith(".json")]
        if not names:
            raise SystemExit(f"{wheel.name} has no schemas of Kubernetes {version}")
        definitions = json.loads(archive.read(prefix + "_definitions.json"))["$defs"]
        for name in names:
            filename = name.removeprefix(prefix)
            if filename in ("_definitions.json", "all.json"):
                continue
            schema = json.loads(archive.read(name))
            needed: set[str] = set()
            pending = sorted(_refs(schema, set()))
            while pending:
                key = pending.pop()
                if key not in needed:
                    needed.add(key)
                    pending.extend(_refs(definitions[key], set()))
            schema = _localised(schema)
            if needed:
                schema["$defs"] = {key: _localised(definitions[key]) for key in sorted(needed)}
            (target / filename).write_text(json.dumps(schema, separators=(",", ":")))
            count += 1
    return count


def _strict(node: Any) -> Any:
    if isinstance(node, dict):
        strict = {key: _strict(value) for key, value in node.items()}
        if (
            "properties" in node
            and "additionalProperties" not in node
            and not node.get("x-kubernetes-preserve-unknown-fields")
        ):
            strict["additionalProperties"] = False
        return strict
    if isinstance(node, list):
        return [_strict(value) for value in node]
    return node


def crd_schemas(out: Path, crd_files: list[Path]) -> int:
    """Write one strict JSON schema per CRD version; return how many."""
    count = 0
    for path in crd_files:
        for crd in yaml.safe_load_all(path.read_text()):
            if not crd or crd.get("kind") != "CustomResourceDefinition":
                continue
            group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
            for version in crd["spec"]["versions"]:
                schema = _strict(version["schema"]["openAPIV3Schema"])
                # The CRD says "string" for both; pin them as kubeconform's own CRD
                # conversion does, so a manifest of another kind cannot pass.
                schema["properties"]["apiVersion"] = {"enum": [f"{group}/{version['name']}"]}
                schema["properties"]["kind"] = {"enum": [kind]}
                schema["required"] = sorted({*schema.get("required", []), "apiVersion", "kind"})
                target = out / group / f"{kind.lower()}_{version['name']}.json"
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(json.dumps(schema, separators=(",", ":")))
                count += 1
    return count


def main(argv: list[str]) -> int:
    """Dispatch ``k8s`` or ``crd``; print how many schemas were written."""
    if len(argv) == 4 and argv[0] == "k8s":
        written = kubernetes_schemas(Path(argv[1]), argv[2], Path(argv[3]))
    elif len(argv) >= 3 and argv[0] == "crd":
        written = crd_schemas(Path(argv[1]), [Path(p) for p in argv[2:]])
    else:
        print(__doc__, file=sys.stderr)
        return 2
    print(f"k8s_schemas: wrote {written} schemas", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
