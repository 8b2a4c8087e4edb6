"""forward_train / backward for layers and cells: BPTT over every layer and direction.

What ``forward_train`` keeps (the tape), per layer and direction, beyond the layer
inputs and outputs (which the forward has anyway): the gate activations of every
step, T*B*H values times 5 for the LSTM (i, f, g, o and c), 4 for the GRU with
linear_before_reset=True (r, z, n and W_hn h + b_hn), 3 with False (r, z, n) and
0 for the RNN (its h is its output), plus h_full (T*B*H) for the LSTM with proj_size
(_projection.py). With dropout, the tape also keeps each dropped layer output's mask
(T*B*D*H_out) and the dropped output that the next layer read.
"""

from typing import Any, Dict, Mapping, NamedTuple, Tuple

import numpy as np

from .._recurrences.bptt import backward_direction, forward_train_direction
from .._recurrences.dropout import draw_mask, resolve_generator
from .._recurrences.sequence import sort_plan, take
from .._validate import check_shape


class TrainDraws(NamedTuple):
    """What a training recurrence may draw its masks with (the layer-normalised cells' zoneout and
    DropConnect): the generator, the batch order (None: the caller's), and the subclass's own
    forward_train options."""
    generator: Any
    order: Any
    steps: int
    batch: int
    options: dict


class Tape:
    """What backward needs from one forward_train call; opaque to users."""

    def __init__(self, **fields):
        self.__dict__.update(fields)


def check_tape(module, tape, kind):
    """The tape must be this module's, recorded with the weights the module has now: assignment,
    load_state_dict and the steps of optimisers given the module bump its version (in-place writes
    into a parameter's array, ``layer.weight_hh_l0[...] = w``, are not seen)."""
    name = type(module).__name__
    if not isinstance(tape, Tape) or tape.owner is not module:
        raise TypeError(f"{name}.backward: tape must come from this {kind}'s forward_train, got {type(tape).__name__}")
    if tape.version != module._version:
        raise RuntimeError(f"{name}.backward: the {kind}'s parameters changed after the forward_train that made this "
                           f"tape (an optimiser step, an assignment or load_state_dict), so its gradients would "
                           f"be wrong; call backward before the optimiser's step, or run forward_train again")


class TrainableLayer:
    """Mixed into _Layer: training through time (see the module docstring for the memory kept)."""

    def forward_train(self, input: Any, state: Any = None, lengths: Any = None, *,
                      generator: Any = None) -> Tuple[Any, Any, Tape]:
        """``output, state_n, tape = layer.forward_train(input, state=None, lengths=None, *, generator=None)``.

        The forward pass of ``layer(input, state, lengths)`` (same arguments, shapes and results),
        plus the tape that :meth:`backward` needs. The tape holds its own copies of the input and
        initial state, so the caller's arrays may change before backward; it is valid until the
        layer's parameters change (an optimiser step, an assignment, load_state_dict).

        With ``dropout`` > 0, each layer's output but the last's is dropped before the next layer
        reads it, with masks drawn from ``generator`` (a numpy.random.Generator or an int seed;
        None: the layer's own generator, seeded from the constructor's ``seed``, whose state
        :meth:`generator_state` checkpoints); backward uses the same masks. See
        rnnkern._recurrences.dropout for the exact draws.

        Memory: the tape keeps every layer's input and output and the gate activations of every
        step (see this module's docstring)."""
        return self._forward_train(input, state, lengths, generator, {})

    def _train_recurrence(self, suffix, draws):
        """The recurrence that trains one layer and direction (kept on the tape for backward)."""
        return self._direction_recurrence(suffix)

    def _forward_train(self, input, state, lengths, generator, options):
        bk, H, D = self._backend, self._h_size, self.num_directions
        rng = resolve_generator(generator, self._dropout_generator, type(self).__name__ + ".forward_train")
        h0_arg, c0_arg = self._split_state(self._state_or_initial(state, input))
        x, batched = self._input(input)
        # the tape keeps its own copies: the caller may reuse or modify its arrays before backward
        x = bk.xp.ascontiguousarray(x.transpose(1, 0, 2)) if self.batch_first else x.copy()
        T, B = x.shape[:2]
        lengths = self._lengths(lengths, T, B, batched)
        h0 = self._state_tensor(h0_arg[0], h0_arg[1], B, batched, H).copy()
        c0 = self._state_tensor(c0_arg[0], c0_arg[1], B, batched).copy() if c0_arg else None
        active, order = sort_plan(lengths, T, B)
        if order is not None:
            x, h0 = take(bk, x, order, 1), take(bk, h0, order, 1)
            c0 = take(bk, c0, order, 1) if c0 is not None else None
        h_n, c_n = bk.empty(h0.shape, self.dtype), (bk.empty(c0.shape, self.dtype) if c0 is not None else None)
        inputs, outputs, directions, masks, recurrences = [], [], [], [], []
        draws = TrainDraws(rng, order, T, B, options)
        for layer in range(self.num_layers):
            y = bk.zeros((T, B, D * H), self.dtype)
            for d, suffix in self._directions(layer):
                k, p, rec = layer * D + d, self._layer_params(suffix), self._train_recurrence(suffix, draws)
                s, h_n[k], c_last = forward_train_direction(
                    rec, rec.weights_of(p), x, h0[k], None if c0 is None else c0[k], y[..., d * H:(d + 1) * H],
                    active, self._reverse(d))
                directions.append(s)
                recurrences.append(rec)
                if c_n is not None:
                    c_n[k] = c_last
            inputs.append(x)
            outputs.append(y)
            x = y
            if self.dropout and layer < self.num_layers - 1:
                masks.append(self._dropout_mask(rng, (T, B, D * H), order))
                x = y * masks[-1]
        tape = Tape(inputs=inputs, outputs=outputs, directions=directions, masks=masks, h0=h0, c0=c0, active=active,
                    order=order, batched=batched, owner=self, version=self._version, recurrences=recurrences)
        y_user, h_user, c_user = self._to_user(outputs[-1], h_n, c_n, order, batched)
        if bk.xp.may_share_memory(y_user, outputs[-1]):
            y_user = y_user.copy()
        return y_user, self._pack_state(h_user, c_user), tape

    def backward(self, tape: Tape, dy: Any, dstate_n: Any = None) -> Tuple[Any, Any, Dict[str, Any]]:
        """``dx, dstate_0, dparams = layer.backward(tape, dy, dstate_n=None)``: backpropagation through time.

        Args:
            tape: what :meth:`forward_train` returned, with the parameters unchanged since
                (RuntimeError otherwise, as torch's version counter).
            dy: the gradient of the loss with respect to ``output`` (its shape and layout).
            dstate_n: with respect to the final state (h_n, or (h_n, c_n) for the LSTM); None, or
                None inside the LSTM's pair, counts as zeros.

        Returns:
            dx (the input's shape), dstate_0 (the initial state's structure and shapes), and
            dparams, the parameters' gradients keyed like ``state_dict()`` (for an optimiser's step).
        """
        check_tape(self, tape, "layer")
        bk, H, D = self._backend, self._h_size, self.num_directions
        y = tape.outputs[-1]
        dy = self._grad_in("dy", dy, y, tape, time_major=True)
        dh_arg, dc_arg = self._split_state(dstate_n, "dstate_n")
        dh_n = self._grad_in(dh_arg[0], dh_arg[1], tape.h0, tape, time_major=False)
        dc_n = self._grad_in(dc_arg[0], dc_arg[1], tape.c0, tape, time_major=False) if dc_arg else None
        dh0, dc0 = bk.empty(tape.h0.shape, self.dtype), (bk.empty(tape.c0.shape, self.dtype) if dc_arg else None)
        dparams = {}
        for layer in range(self.num_layers - 1, -1, -1):
            x, y = tape.inputs[layer], tape.outputs[layer]
            dx = bk.zeros(x.shape, self.dtype)
            for d, suffix in self._directions(layer):
                k, p, cols = layer * D + d, self._layer_params(suffix), slice(d * H, (d + 1) * H)
                rec = tape.recurrences[k]
                grads, dx_d, dh0[k], dc0_k = backward_direction(rec, rec.weights_of(p), tape.directions[k],
                                                                dy[..., cols], dh_n[k], None if dc_n is None else dc_n[k])
                dx += dx_d
                if dc0 is not None:
                    dc0[k] = dc0_k
                dparams.update({name + suffix: g for name, g in grads.items()})
            dy = dx * tape.masks[layer - 1] if layer and tape.masks else dx
        dx_user, dh_user, dc_user = self._to_user(dy, dh0, dc0, tape.order, tape.batched)
        return dx_user, self._pack_state(dh_user, dc_user), {k: dparams[k] for k in self._params}

    # --- checkpoints of the dropout generator ------------------------------------------------
    def generator_state(self) -> Dict[str, Any]:
        """The state of the layer's own dropout generator (what ``forward_train`` draws masks from
        when ``generator=None``), as NumPy's ``bit_generator.state``: a dict of ints and strings
        that pickles. It is not a parameter, so not in ``state_dict()``; save it beside it, and
        :meth:`set_generator_state` on resume, for the masks to continue where they stopped."""
        return self._dropout_generator.bit_generator.state

    def set_generator_state(self, state: Mapping[str, Any]) -> None:
        """Restore what :meth:`generator_state` returned (of this layer or another): the next
        ``forward_train`` draws the masks the saved layer would have drawn next."""
        where = f"{type(self).__name__}.set_generator_state"
        kind = type(self._dropout_generator.bit_generator).__name__
        if not isinstance(state, Mapping) or state.get("bit_generator") != kind:
            got = (f"bit_generator={state.get('bit_generator')!r}" if isinstance(state, Mapping)
                   else type(state).__name__)
            raise TypeError(f"{where}: state must be what generator_state() returns (a dict with "
                            f"bit_generator={kind!r}), got {got}")
        bit_generator = self._dropout_generator.bit_generator
        saved = bit_generator.state
        try:
            bit_generator.state = dict(state)
        except (TypeError, ValueError, KeyError) as exc:
            bit_generator.state = saved  # nothing half-written
            raise ValueError(f"{where}: state is not a valid {kind} state ({type(exc).__name__}: {exc})") from None

    # --- helpers ---------------------------------------------------------------------------
    def _dropout_mask(self, rng, shape, order):
        """A dropout mask drawn in the caller's batch order (see _dropout.py), in the internal one."""
        mask = self._backend.asarray(draw_mask(rng, self.dropout, shape, self.dtype))
        return take(self._backend, mask, order, 1) if order is not None else mask

    def _layer_params(self, suffix):
        return {name: self._params[name + suffix] for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
                if name + suffix in self._params}

    def _to_user(self, y, h, c, order, batched):
        """Internal time-major, sorted-batch arrays -> the caller's layout, order and batching."""
        bk = self._backend
        if order is not None:
            inverse = np.argsort(order)
            y, h = take(bk, y, inverse, 1), take(bk, h, inverse, 1)
            c = take(bk, c, inverse, 1) if c is not None else None
        if self.batch_first:
            y = bk.xp.ascontiguousarray(y.transpose(1, 0, 2))
        if not batched:
            y = y[0] if self.batch_first else y[:, 0]
            h, c = h[:, 0], (c[:, 0] if c is not None else None)
        return y, h, c

    def _grad_in(self, name, grad, like, tape, time_major):
        """A gradient argument in the internal layout (zeros when None), shape-checked against the
        forward's result in the caller's layout."""
        bk = self._backend
        if grad is None:
            return bk.zeros(like.shape, self.dtype)
        grad = self._native(name, grad, owner=type(self).__name__ + ".backward")
        user = like
        if time_major and self.batch_first:
            user = like.transpose(1, 0, 2)
        expected = tuple(user.shape) if tape.batched else tuple(np.delete(user.shape, 0 if time_major and
                                                                          self.batch_first else 1))
        check_shape(name, grad, expected, type(self).__name__ + ".backward")
        if not tape.batched:
            grad = grad[None] if (time_major and self.batch_first) else grad[:, None]
        if time_major and self.batch_first:
            grad = grad.transpose(1, 0, 2)
        if tape.order is not None:
            grad = take(bk, grad, tape.order, 1)
        return bk.xp.ascontiguousarray(grad)


class TrainableCell:
    """Mixed into the cells: one step's forward with a tape, and its backward."""

    def forward_train(self, input: Any, state: Any = None) -> Tuple[Any, Tape]:
        """``new_state, tape = cell.forward_train(input, state=None)``.

        The step of ``cell(input, state)`` (same arguments, shapes and result) plus the tape that
        :meth:`backward` needs: copies of the input and state and the step's gate activations
        (5*B*H values for the LSTM, 4 or 3 for the GRU, none for the RNN). The tape is valid until
        the cell's parameters change."""
        return self._forward_train(input, state, None, {})

    def _train_recurrence(self, draws):
        """The recurrence that trains the cell's step (kept on the tape for backward)."""
        return self._cell_recurrence()

    def _forward_train(self, input, state, generator, options):
        x, batched = self._input(input)
        (h_name, h), c_part = self._split_state(state)
        x = x.copy()  # the tape's own copies, as for layers
        h = self._hidden(h_name, h, x.shape[0], batched).copy()
        c = self._hidden(c_part[0], c_part[1], x.shape[0], batched).copy() if c_part else None
        p, out = self._params, self._backend.empty((1, x.shape[0], self.hidden_size), self.dtype)
        rec = self._train_recurrence(TrainDraws(generator, None, 1, x.shape[0], options))
        direction, h_new, c_new = forward_train_direction(
            rec, rec.weights_of(p), x[None], h, c, out, np.array([x.shape[0]]), False)
        tape = Tape(direction=direction, batched=batched, owner=self, version=self._version, recurrence=rec)
        return self._user_state(h_new, c_new, batched), tape

    def backward(self, tape: Tape, dnew_state: Any) -> Tuple[Any, Any, Dict[str, Any]]:
        """``dx, dstate, dparams = cell.backward(tape, dnew_state)``: one step's backward.

        Args:
            tape: what :meth:`forward_train` returned, with the parameters unchanged since.
            dnew_state: the gradient of the loss with respect to the new state (h', or (h', c') for
                the LSTMCell, same shapes); None, or None in the LSTM's pair, counts as zeros.

        Returns:
            dx (the input's shape), dstate (the state's structure and shapes), and dparams, the
            parameters' gradients keyed like ``state_dict()``.
        """
        check_tape(self, tape, "cell")
        batch = tape.direction.x.shape[1]
        (dh_name, dh), dc_part = self._split_state(dnew_state, "dnew_state")
        dh = self._hidden(dh_name, dh, batch, tape.batched)
        dc = self._hidden(dc_part[0], dc_part[1], batch, tape.batched) if dc_part else None
        rec = tape.recurrence
        grads, dx, dh0, dc0 = backward_direction(rec, rec.weights_of(self._params), tape.direction, None, dh, dc)
        dx = dx[0] if tape.batched else dx[0, 0]
        return dx, self._user_state(dh0, dc0, tape.batched), {k: grads[k] for k in self._params}

    def _user_state(self, h, c, batched):
        if not batched:
            h, c = h[0], (c[0] if c is not None else None)
        return self._pack_state(h, c)
