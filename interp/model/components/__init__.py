"""The small modules a transformer is built from, each readable in one sitting."""

from interp.model.components.attention import Attention
from interp.model.components.block import Block
from interp.model.components.embed import Embed, PosEmbed, Unembed
from interp.model.components.mlp import MLP
from interp.model.components.norm import make_norm

__all__ = ["Attention", "Block", "Embed", "PosEmbed", "Unembed", "MLP", "make_norm"]
