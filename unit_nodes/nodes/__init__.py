"""The ComfyUI nodes of unit-nodes: thin adapters over unit_nodes.core.

Every module here but ``layout`` needs ComfyUI (``comfy_api``, ``comfy``, ``folder_paths``), so
this package imports none of them up front: ComfyUI calls ``comfy_entrypoint``, which loads
``extension`` (the node list). Node modules: ``loaders`` (Load / Save UNIT Model), ``latent``
(encode, decode, prior, interpolation), ``translate`` (translate, cycle), ``train``.
"""


async def comfy_entrypoint():
    from .extension import comfy_entrypoint as entrypoint

    return await entrypoint()
