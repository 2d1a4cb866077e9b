"""ComfyUI workflow files: the editor's UI format -> the API format /prompt takes.

The UI format (LiteGraph, version 0.4) stores widget values as a positional list per node;
which input each value belongs to is only known from the node definitions, so the conversion
reads /object_info: widget inputs in ``input_order`` (required, then optional), one value
each, plus the frontend's extra values (the 'control after generate' mode of seeds, the
upload button of image loaders). Links map to ``[origin id, origin slot]``.
"""
from __future__ import annotations

WIDGET_TYPES = {"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"}
MUTED_MODES = {2, 4}  # never / bypass: the frontend leaves these nodes out of the prompt


class WorkflowFormatError(ValueError):
    pass


def is_widget(spec: list) -> bool:
    kind = spec[0]
    options = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
    return (isinstance(kind, list) or kind in WIDGET_TYPES) and not options.get("forceInput")


def widget_inputs(node_info: dict) -> list[tuple[str, dict]]:
    out = []
    for category in ("required", "optional"):
        for name in node_info.get("input_order", {}).get(category, []):
            spec = node_info["input"][category][name]
            if is_widget(spec):
                out.append((name, spec[1] if len(spec) > 1 else {}))
    return out


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
        for name, options in widget_inputs(info):
            if not values:
                raise WorkflowFormatError(f"node {node['id']} ({node_type}): no widget value for {name!r}")
            value = values.pop(0)
            if name not in inputs:  # a widget turned into a linked input keeps a stale value
                inputs[name] = value
            if options.get("control_after_generate"):
                values.pop(0)
            if options.get("image_upload"):
                values.pop(0)
        if values:
            raise WorkflowFormatError(f"node {node['id']} ({node_type}): {len(values)} widget value(s) left over: {values}")
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
