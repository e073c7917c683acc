"""Where a fact is stored: causal tracing (Meng et al. 2022) and knowledge neurons (Dai et al. 2022).

    trace = run_trace(model, TraceParams(prompt="The {} is located in the city of", subject="Eiffel Tower"))
    found = run_neurons(model, NeuronParams(paraphrases=("The Eiffel Tower is in the city of",)))

Two analyses, one package laid out as every analysis package: `params.py` (`TraceParams`, `NeuronParams`),
`run.py` (`run_trace`, `run_neurons`), `result.py` (`TraceResult`) and `neurons_result.py` (`NeuronResult`),
then the algorithm modules `causal_trace`, `neurons` (integrated gradients, refinement), `neuron_controls`, and
`records` (fact files).
"""

from __future__ import annotations

from interp.lazy import lazy_attributes

__all__ = ["TraceParams", "NeuronParams", "TraceResult", "NeuronResult", "run_trace", "run_neurons"]
__getattr__ = lazy_attributes(__name__, {"TraceParams": "params", "NeuronParams": "params", "TraceResult": "result",
                                         "NeuronResult": "neurons_result", "run_trace": "run", "run_neurons": "run"})
