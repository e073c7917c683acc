"""The induction analysis' result: tables, figure data, JSON summary, figures, findings, a Markdown summary."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from interp.analysis.induction.params import CLI_FLAGS, InductionParams
from interp.analysis.result import Finding, ResultBase
from interp.figures import new_figure


def label(layer: int, head: int) -> str:
    return f"L{layer}.H{head}"


@dataclass(repr=False)
class InductionResult(ResultBase):
    model: str
    params: InductionParams
    seconds: float
    top_heads: list[tuple[int, int]]  # the ablated heads, best first
    heads: pd.DataFrame  # one row per head, sorted by induction score
    loss_by_position: pd.DataFrame  # position, loss (repeat 1 / 2)
    ablation: pd.DataFrame  # kind, seed, mode, heads, loss_increase
    composition: pd.DataFrame  # target, source, k_comp, source_prev_token, rank
    text_check: dict | None  # natural-text check (bigram-continuing vs other tokens)
    peer: dict  # agreement with TransformerLens' head detector
    circuit: dict  # summary of K-composition
    example: dict  # strongest head's pattern on one example: layer, head, pattern (q, k), tokens
    induction_grid: np.ndarray  # (n_layers, n_heads)
    prev_grid: np.ndarray  # (n_layers, n_heads)
    loss_first: float = 0.0
    loss_second: float = 0.0
    notes: list[str] = field(default_factory=list)
    paths: pd.DataFrame | None = None  # path patching into the top heads' keys: sender, layer, head, effect, ...
    ablation_sequences: pd.DataFrame | None = None  # sequence, mode, loss_increase of the top heads' ablation
    command: str = ""

    cli_name = "induction"
    cli_flags = CLI_FLAGS

    # -- summaries ----------------------------------------------------------------------------------
    def ablation_summary(self) -> dict:
        """Top heads against the random draws, zero and mean ablation, on the ablation batch (not the batch the
        heads were selected on): each with a 95% interval (top: bootstrap over the batch's sequences; random:
        bootstrap over the draws, and the draws' own 2.5-97.5 percentile range)."""
        from interp.analysis.recall.stats import bootstrap_mean

        ab, p = self.ablation, self.params
        top = ab[ab.kind == "top"].set_index("mode").loss_increase
        rnd = ab[ab.kind == "random"]
        seq = self.ablation_sequences

        def block(mode: str) -> dict:
            r = rnd[rnd["mode"] == mode].loss_increase.to_numpy()
            per_seq = seq[seq["mode"] == mode].loss_increase.tolist() if seq is not None else []
            return {"top_loss_increase": float(top[mode]),
                    "top_ci": list(bootstrap_mean(per_seq, seed=p.seed)) if per_seq else None,
                    "n_sequences": len(per_seq) or None,
                    "random_loss_increase_mean": float(r.mean()), "random_loss_increase_std": float(r.std(ddof=0)),
                    "random_ci": list(bootstrap_mean(r, seed=p.seed)),
                    "random_range": [float(np.percentile(r, 2.5)), float(np.percentile(r, 97.5))],
                    "random_at_least_top": int((r >= float(top[mode])).sum())}

        zero, mean = block("zero"), block("mean")
        out = {"k": int(p.top_k), **{k: zero[k] for k in ("top_loss_increase", "random_loss_increase_mean",
                                                           "random_loss_increase_std")},
               "mode": "zero", "seeds": int(rnd.seed.nunique()), "zero_ablation": zero, "mean_ablation": mean,
               "selection_seed": int(p.seed), "ablation_seed": int(p.ablation_batch_seed),
               "finding_mode": "mean"}
        out["top_heads"] = [[int(a), int(b)] for a, b in self.top_heads]
        return out

    def to_json(self) -> dict:
        heads = [
            {"layer": int(r.layer), "head": int(r.head), "induction_score": float(r.induction),
             "prev_token_score": float(r.prev_token), "duplicate_score": float(r.duplicate),
             "copying_score": float(r.copying), "direct_logit": float(r.direct_logit),
             "ablation_effect": None if pd.isna(r.ablation_effect) else float(r.ablation_effect)}
            for r in self.heads.itertuples()
        ]
        params = {**asdict(self.params), "model_name": self.params.model_name or self.model}
        return {"model": self.model, "params": params, "seconds": self.seconds,
                "heads": heads, "ablation": self.ablation_summary(),
                "loss": {"first_repeat": self.loss_first, "second_repeat": self.loss_second},
                "circuit": self.circuit, "path_circuit": self.path_summary(), "natural_text": self.text_check,
                "peer": self.peer, "notes": self.notes}

    def path_summary(self, top: int = 3) -> dict | None:
        """The senders that feed the induction heads' keys by path patching, against the other senders."""
        if self.paths is None:
            return None
        rest = self.paths.effect.iloc[top:]
        return {"receivers": self.paths.receivers.iloc[0].split(), "senders": len(self.paths),
                "top": self.paths.head(top)[["sender", "effect", "prev_token"]].to_dict(orient="records"),
                "control_mean": float(rest.mean()), "control_std": float(rest.std(ddof=0)),
                "pairs": self.params.path_pairs, "seq_len": self.params.path_seq_len}

    def tables(self) -> dict[str, pd.DataFrame]:
        out = {"heads": self.heads, "loss_by_position": self.loss_by_position, "ablation": self.ablation,
               "composition": self.composition}
        if self.ablation_sequences is not None:
            out["ablation_sequences"] = self.ablation_sequences
        if self.paths is not None:
            out["paths"] = self.paths
        return out

    def summary_markdown(self) -> str:
        p, ab = self.params, self.ablation_summary()
        top = self.heads.head(p.top_k)
        lines = [f"# Induction heads in {self.model}", "",
                 f"Repeated random tokens, batch {p.batch} x (1 + 2 x {p.seq_len}), seed {p.seed}. "
                 f"Loss on the first repeat {self.loss_first:.2f} nats, on the second {self.loss_second:.2f} "
                 f"(in-context copying gap {self.loss_first - self.loss_second:.2f}).", "",
                 "| head | induction | prev-token | duplicate | copying (OV eig.) | direct logit "
                 "| ablation (zero, alone) |",
                 "|---|---|---|---|---|---|---|"]
        for r in top.itertuples():
            eff = "" if pd.isna(r.ablation_effect) else f"{r.ablation_effect:+.3f}"
            lines.append(f"| L{r.layer}.H{r.head} | {r.induction:.3f} | {r.prev_token:.3f} | {r.duplicate:.3f} | "
                         f"{r.copying:+.2f} | {r.direct_logit:+.2f} | {eff} |")
        n_above = int((self.heads.induction > p.threshold).sum())
        lines += ["", f"{n_above} heads score above {p.threshold} (ARENA's threshold).", "",
                  self._ablation_sentence(ab) + " Zero ablation: " + self._ablation_numbers(ab["zero_ablation"]) + "."]
        c = self.circuit
        if c and c["prev_heads_mean"] is not None and c["other_heads_mean"] is not None:
            lines += ["", "**Circuit** (K-composition): previous-token heads "
                          f"(prev-token score > {c['prev_threshold']}) "
                          f"feed the top induction heads with mean K-composition {c['prev_heads_mean']:.3f} vs "
                          f"{c['other_heads_mean']:.3f} for other earlier heads. Strongest edges: "
                      + ", ".join(f"{e['source']}->{e['target']} ({e['k_comp']:.3f})" for e in c["edges"][:5]) + "."]
        ps = self.path_summary()
        if ps:
            lines += ["", f"**Circuit** (path patching): each of the {ps['senders']} earlier heads' output taken from "
                          f"fresh random tokens along its path into the keys of {', '.join(ps['receivers'])} only "
                          f"(everything else on the repeated run; {ps['pairs']} sequences of 1 + 2 x {ps['seq_len']}). "
                          "Loss of second-copy log-probability: "
                      + ", ".join(f"{t['sender']} {t['effect']:.2f} nats (prev-token score {t['prev_token']:.2f})"
                                  for t in ps["top"])
                      + f"; every other sender {ps['control_mean']:.3f} +- {ps['control_std']:.3f} (the control)."]
        t = self.text_check
        if t:
            lines += ["", f"**Natural text** ({t['source']}, {t['mode']} ablation): top heads raise the loss of "
                          f"bigram-continuing tokens by {t['top_bigram']:+.3f} (n={t['n_bigram']}) vs "
                          f"{t['top_other']:+.3f} for other tokens (n={t['n_other']}); random heads: "
                          f"{t['random_bigram']:+.3f} vs {t['random_other']:+.3f}."]
        pr = self.peer
        if pr:
            if pr.get("bridge_top10_overlap") is not None:
                lines += ["", "**Peer**: TransformerLens `detect_head` on a TransformerBridge of the same model: "
                              f"top-10 overlap with our induction score {pr['bridge_top10_overlap']}/10; TL's "
                              f"detector logic on our patterns vs the bridge: "
                              f"{pr['tl_logic_vs_bridge_top10_overlap']}/10."]
            else:
                why = (f"could not be built ({pr['bridge_error']})" if pr.get("bridge_error")
                       else "was not requested (peer_bridge = false)")
                lines += ["", f"**Peer**: the TransformerBridge {why}; TL's detector logic on our patterns: top-10 "
                              f"overlap with our score {pr['tl_logic_top10_overlap']}/10."]
        for n in self.notes:
            lines.append(f"\n_Note_: {n}")
        return "\n".join(lines) + "\n"

    def _ablation_numbers(self, m: dict) -> str:
        def ci(pair) -> str:
            return f" [{pair[0]:.3f}, {pair[1]:.3f}]" if pair and not any(np.isnan(pair)) else ""

        n = f", {m['n_sequences']} sequences" if m["n_sequences"] else ""
        return (f"top {m['top_loss_increase']:.3f} nats{ci(m['top_ci'])}{n}; random "
                f"{m['random_loss_increase_mean']:.3f}{ci(m['random_ci'])} (draws' 95% range "
                f"{m['random_range'][0]:.3f} to {m['random_range'][1]:.3f}; {m['random_at_least_top']} of "
                f"{self.ablation_summary()['seeds']} draws at or above the top heads)")

    def _ablation_sentence(self, ab: dict) -> str:
        p = self.params
        return (f"**Ablation** (heads selected on the batch of seed {ab['selection_seed']}, ablated on another "
                f"batch, seed {ab['ablation_seed']}, {p.batch} x (1 + 2 x {p.seq_len}); the finding uses mean "
                f"ablation: each head's output replaced by its mean over that batch's positions) of the top "
                f"{ab['k']} heads against {ab['seeds']} draws of {ab['k']} random heads from the same layers, "
                "second-repeat loss increase with 95% intervals: mean ablation: "
                + self._ablation_numbers(ab["mean_ablation"]) + ".")

    def findings(self) -> list[Finding]:
        ab, top = self.ablation_summary(), self.heads.iloc[0]
        gap = self.loss_first - self.loss_second
        out = [
            self.finding("strongest_head",
                         f"The strongest induction head is {label(int(top['layer']), int(top['head']))} "
                         f"(induction score {top.induction:.2f}; the median head scores "
                         f"{self.heads.induction.median():.3f}).", float(top.induction), "attention"),
            self.finding("copying_gap", f"Loss on the first repeat {self.loss_first:.2f} nats, on the second "
                         f"{self.loss_second:.2f} (in-context copying gap {gap:.2f}).", gap, "nats"),
            self.finding("ablation_top_loss_increase", self._ablation_finding(ab), ab["mean_ablation"][
                "top_loss_increase"], "nats"),
        ]
        c = self.circuit
        if c and c["prev_heads_mean"] is not None and c["other_heads_mean"] is not None:
            out.append(self.finding("k_composition_prev_heads", f"Previous-token heads feed the top induction heads "
                                    f"with mean K-composition {c['prev_heads_mean']:.3f} vs {c['other_heads_mean']:.3f}"
                                    " for other earlier heads.", c["prev_heads_mean"], "K-composition"))
        ps = self.path_summary()
        if ps:
            t = ps["top"][0]
            out.append(self.finding("path_top_sender", f"Path patching into the keys of {', '.join(ps['receivers'])}: "
                                    f"{t['sender']} (previous-token score {t['prev_token']:.2f}) carries "
                                    f"{t['effect']:.2f} nats of second-copy log-probability, against "
                                    f"{ps['control_mean']:.3f} +- {ps['control_std']:.3f} for the other senders.",
                                    t["effect"], "nats"))
        return out

    def _ablation_finding(self, ab: dict) -> str:
        m, z = ab["mean_ablation"], ab["zero_ablation"]

        def ci(pair) -> str:
            return f" [{pair[0]:.3f}, {pair[1]:.3f}]" if pair and not any(np.isnan(pair)) else ""

        return (f"Mean-ablating the top {ab['k']} heads (selected on one batch, ablated on another) raises "
                f"second-repeat loss by {m['top_loss_increase']:.3f} nats{ci(m['top_ci'])}, against "
                f"{m['random_loss_increase_mean']:.3f}{ci(m['random_ci'])} for {ab['seeds']} draws of {ab['k']} "
                f"random heads from the same layers; zero ablation: {z['top_loss_increase']:.3f} vs "
                f"{z['random_loss_increase_mean']:.3f}{ci(z['random_ci'])}.")

    # -- figures ------------------------------------------------------------------------------------
    def figures(self) -> dict:
        figs = {"heatmap": self._heatmap(), "strongest_head_pattern": self._pattern_figure(),
                "circuit": self._circuit_figure(), "loss_by_position": self._loss_figure()}
        if self.paths is not None:
            figs["path_circuit"] = self._path_figure()
        return figs

    def _path_figure(self):
        """Effect of each sender's path into the induction heads' keys, as a (layer, head) grid."""
        grid = np.full(self.induction_grid.shape, np.nan)
        for r in self.paths.itertuples():
            grid[r.layer, r.head] = r.effect
        fig, ax = new_figure((5.5, max(3.5, 0.22 * grid.shape[0] + 1.5)))
        limit = float(np.nanmax(np.abs(grid))) or 1.0
        im = ax.imshow(grid, aspect="auto", cmap="RdBu_r", vmin=-limit, vmax=limit)
        ax.set(xlabel="head", ylabel="layer",
               title=f"path patching into the keys of {self.paths.receivers.iloc[0]} (nats)")
        fig.colorbar(im, ax=ax)
        return fig

    def _heatmap(self):
        fig, axes = new_figure((10, max(4, 0.22 * self.induction_grid.shape[0] + 1.5)), ncols=2)
        for ax, grid, title in zip(axes, (self.induction_grid, self.prev_grid), ("induction", "previous-token")):
            im = ax.imshow(grid, aspect="auto", cmap="viridis", vmin=0, vmax=1)
            ax.set(title=f"{title} score", xlabel="head", ylabel="layer")
            fig.colorbar(im, ax=ax)
        fig.suptitle(self.model)
        return fig

    def _pattern_figure(self):
        ex = self.example
        fig, ax = new_figure((6, 5.5))
        ax.imshow(np.asarray(ex["pattern"]), cmap="Blues", vmin=0, vmax=1)
        ax.set(title=f"L{ex['layer']}.H{ex['head']} attention on [BOS] + r + r", xlabel="key position",
               ylabel="query position")
        return fig

    def _loss_figure(self):
        fig, ax = new_figure((7, 3.5))
        lp = self.loss_by_position
        ax.plot(lp.position, lp.loss, lw=1)
        ax.axvline(self.params.seq_len + 0.5, color="grey", ls="--")
        ax.set(xlabel="position (predicting the next token)", ylabel="loss (nats)", title="loss by position")
        return fig

    def _circuit_figure(self):
        """Nodes at (layer, head); an edge from each previous-token source to each induction head, width
        and darkness by K-composition."""
        import matplotlib

        reds = matplotlib.colormaps["Reds"]
        edges = self.circuit.get("edges", []) if self.circuit else []
        fig, ax = new_figure((8, 4.5))
        if edges:
            w = np.array([e["k_comp"] for e in edges])
            lo, hi = w.min(), max(w.max(), w.min() + 1e-9)
            nodes = {}
            for e in edges:
                nodes[e["source"]] = (e["source_layer"], e["source_head"], "prev")
                nodes[e["target"]] = (e["target_layer"], e["target_head"], "ind")
            for e, wi in zip(edges, w):
                t = (wi - lo) / (hi - lo)
                ax.annotate("", xy=(e["target_layer"], e["target_head"]), xytext=(e["source_layer"], e["source_head"]),
                            arrowprops=dict(arrowstyle="->", lw=0.5 + 3.5 * t, color=reds(0.35 + 0.65 * t),
                                            shrinkA=7, shrinkB=7))
            for name, (layer, head, kind) in nodes.items():
                ax.scatter([layer], [head], s=260, color="tab:orange" if kind == "ind" else "tab:blue", zorder=3)
                ax.annotate(name, (layer, head), ha="center", va="center", fontsize=6, zorder=4)
        ax.set(xlabel="layer", ylabel="head",
               title="K-composition: previous-token heads (blue) -> induction heads (orange)")
        return fig
