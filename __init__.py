"""ComfyUI entry point of the unit-nodes pack (this folder goes in ComfyUI/custom_nodes/).

Only ``comfy_entrypoint`` lives here and it imports the nodes lazily, so importing this file
outside ComfyUI (pytest, tools that scan packages) needs nothing from ComfyUI.
"""


async def comfy_entrypoint():
    from .unit_nodes.nodes.extension import comfy_entrypoint as entrypoint

    return await entrypoint()
