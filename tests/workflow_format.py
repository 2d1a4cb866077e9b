"""ComfyUI workflow files: the editor's UI format -> the API format /prompt takes.

The UI format (LiteGraph, version 0.4) stores widget values as a positional list per node;
which input each value belongs to is only known from the node definitions, so the conversion
reads /object_info: widget inputs in ``input_order`` (required, then optional), one value
each, plus the frontend's extra values (the 'control after generate' mode of seeds, the
upload button of image loaders). Links map to ``[origin id, origin slot]``. Every value is
checked against its input (type, range, combo options), so values shifted by one slot fail.
"""
from __future__ import annotations

WIDGET_TYPES = {"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"}
MUTED_MODES = {2, 4}  # never / bypass: the frontend leaves these nodes out of the prompt
CONTROL_MODES = {"fixed", "increment", "decrement", "randomize"}
# INT inputs of these names get a control widget unless they say otherwise (ComfyUI frontend
# 1.32 useIntWidget: `control_after_generate ?? ["seed", "noise_seed"].includes(name)`; older
# frontends add it to these names whatever the input says).
SEED_NAMES = {"seed", "noise_seed"}


class WorkflowFormatError(ValueError):
    pass


def is_widget(spec: list) -> bool:
    kind = spec[0]
    options = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
    return (isinstance(kind, list) or kind in WIDGET_TYPES) and not options.get("forceInput")


def widget_inputs(node_info: dict) -> list[tuple[str, list]]:
    out = []
    for category in ("required", "optional"):
        for name in node_info.get("input_order", {}).get(category, []):
            spec = node_info["input"][category][name]
            if is_widget(spec):
                out.append((name, spec))
    return out


def _options(spec: list) -> dict:
    return spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}


def has_control_widget(name: str, spec: list) -> bool:
    """Whether the editor puts a 'control after generate' widget (one more value) after this one."""
    declared = _options(spec).get("control_after_generate")
    if spec[0] == "INT" and declared is None:
        return name in SEED_NAMES
    return bool(declared)


def widget_value_problem(name: str, spec: list, value) -> str | None:
    """Why ``value`` cannot be the value of widget input ``name`` (None when it can)."""
    kind, options = spec[0], _options(spec)
    if isinstance(kind, list) or kind == "COMBO":
        allowed = kind if isinstance(kind, list) else options.get("options", [])
        return None if value in allowed else f"{name}: {value!r} is not one of {allowed}"
    if kind == "BOOLEAN":
        return None if isinstance(value, bool) else f"{name}: {value!r} is not a boolean"
    if kind == "STRING":
        return None if isinstance(value, str) else f"{name}: {value!r} is not a string"
    wanted = int if kind == "INT" else (int, float)
    if isinstance(value, bool) or not isinstance(value, wanted):
        return f"{name}: {value!r} is not {'an integer' if kind == 'INT' else 'a number'}"
    low, high = options.get("min"), options.get("max")
    if (low is not None and value < low) or (high is not None and value > high):
        return f"{name}: {value!r} is outside [{low}, {high}]"
    return None


def ui_to_api(workflow: dict, object_info: dict) -> dict:
    """The API-format prompt the editor would queue for ``workflow``."""
    if workflow.get("version") != 0.4:
        raise WorkflowFormatError(f"expected a UI workflow of version 0.4, got {workflow.get('version')!r}")
    links = {link[0]: link for link in workflow.get("links", [])}
    prompt = {}
    for node in workflow["nodes"]:
        if node.get("mode", 0) in MUTED_MODES:
            continue
        node_type = node["type"]
        if node_type not in object_info:
            raise WorkflowFormatError(f"node {node['id']}: unknown node type {node_type!r}")
        info = object_info[node_type]
        inputs = {}
        for slot in node.get("inputs", []):
            link_id = slot.get("link")
            if link_id is None:
                continue
            if link_id not in links:
                raise WorkflowFormatError(f"node {node['id']} input {slot['name']!r} names missing link {link_id}")
            _, origin, origin_slot, target, _, _ = links[link_id]
            if target != node["id"]:
                raise WorkflowFormatError(f"link {link_id} ends at node {target}, not at node {node['id']}")
            inputs[slot["name"]] = [str(origin), origin_slot]
        values = list(node.get("widgets_values", []))
        where = f"node {node['id']} ({node_type})"
        for name, spec in widget_inputs(info):
            if not values:
                raise WorkflowFormatError(f"{where}: no widget value for {name!r}")
            value = values.pop(0)
            if name not in inputs:  # a widget turned into a linked input keeps a stale value
                problem = widget_value_problem(name, spec, value)
                if problem:
                    raise WorkflowFormatError(f"{where}: {problem} (are the widget values shifted?)")
                inputs[name] = value
            if has_control_widget(name, spec):
                control = values.pop(0) if values else None
                if control not in CONTROL_MODES:
                    raise WorkflowFormatError(f"{where}: the editor adds a 'control after generate' widget after "
                                              f"{name!r}; its value must be one of {sorted(CONTROL_MODES)}, got {control!r}")
            if _options(spec).get("image_upload"):
                values.pop(0)
        if values:
            raise WorkflowFormatError(f"{where}: {len(values)} widget value(s) left over: {values}")
        prompt[str(node["id"])] = {"class_type": node_type, "inputs": inputs}
    return prompt


def check_links(workflow: dict, object_info: dict) -> list[str]:
    """Inconsistencies between the links array and the nodes' slots (empty when none)."""
    problems = []
    nodes = {node["id"]: node for node in workflow["nodes"]}
    for link_id, origin, origin_slot, target, target_slot, link_type in workflow.get("links", []):
        if origin not in nodes or target not in nodes:
            problems.append(f"link {link_id}: node {origin} or {target} does not exist")
            continue
        out = nodes[origin]["outputs"][origin_slot]
        if link_id not in (out.get("links") or []):
            problems.append(f"link {link_id}: not listed on output {origin_slot} of node {origin}")
        declared = object_info[nodes[origin]["type"]]["output"][origin_slot]
        if link_type != declared or out["type"] != declared:
            problems.append(f"link {link_id}: type {link_type!r} / {out['type']!r}, output declares {declared!r}")
        slots = nodes[target]["inputs"]
        if target_slot >= len(slots) or slots[target_slot].get("link") != link_id:
            problems.append(f"link {link_id}: input slot {target_slot} of node {target} does not hold it")
    return problems
