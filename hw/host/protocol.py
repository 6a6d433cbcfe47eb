"""The host link protocol engine: parses request frames from a byte stream, runs them on the bus,
and answers every one with a response frame.

Protocol specification
======================

Bytes travel over an 8N1 UART. Multi-byte fields are little-endian, except CRCs, which are sent
most significant byte first. The host sends one request and waits for its response before it
sends the next (stop-and-wait); ``SEQ`` is an arbitrary byte the host chooses and the board
echoes, to match responses to requests. Addresses and lengths count 32-bit words.

Request (host to board)::

    A5 | CMD | SEQ | ADDR[4] | LEN[2] | HCRC[2] || DATA[4*LEN] | PCRC[2]
    '------------ header, 11 bytes -----------'   '-- writes only --'

``HCRC`` is the CRC-16/CCITT-FALSE of the 9 header bytes before it (sync included), ``PCRC`` that
of ``DATA``. The header has its own CRC so that a corrupted ``LEN`` is caught before the board
waits for a payload that will never come.

Response (board to host)::

    5A | CMD | SEQ | STATUS | LEN[2] | DATA[4*LEN] | CRC[2]

``CMD`` and ``SEQ`` echo the request's (as received, 0 for bytes not received); ``LEN`` is the
number of data words, non-zero only for a successful read; ``CRC`` covers everything before it.

Commands:

==== =========== ======================================================================
CMD  name        effect
==== =========== ======================================================================
0x01 READ_REG    read the word at ADDR; LEN must be 1
0x02 WRITE_REG   write DATA (one word) to ADDR; LEN must be 1
0x03 READ_BLOCK  read LEN words from ADDR, ADDR+1, ...; 1 <= LEN <= max_words
0x04 WRITE_BLOCK write LEN words to ADDR, ADDR+1, ...; 1 <= LEN <= max_words
==== =========== ======================================================================

Status codes (checked in this order):

==== ============ ================================================================== ==========
code name         cause                                                              answered
==== ============ ================================================================== ==========
0x01 BAD_CRC      header CRC wrong                                                   after idle
0x02 UNKNOWN_CMD  CMD not in the table                                               after idle
0x03 BAD_LENGTH   LEN = 0, LEN > max_words, or LEN != 1 for a *_REG command          after idle
0x04 BAD_ADDRESS  ADDR .. ADDR+LEN-1 not all inside one bus region                   after idle
0x01 BAD_CRC      payload CRC wrong                                                  at once
0x05 TIMEOUT      the line went idle in the middle of a frame (after the sync byte)  at once
0x06 BUS_TIMEOUT  a peripheral did not acknowledge within ``bus_timeout_cycles``     at once
0x00 OK           done; reads return their words                                     at once
==== ============ ================================================================== ==========

Rules that make the link robust:

1. **Hunting.** Between frames the board discards every byte that is not ``A5``; garbage on an
   idle link is ignored and never answered.
2. **Idle timeout.** "Idle" means no byte received for ``idle_timeout_cycles``. A frame that
   stops before its last byte is answered ``TIMEOUT`` once the line has been idle that long.
3. **Rejected headers drain.** A frame rejected at its header (the first four errors) may be
   longer than the board can tell (a corrupt ``LEN``, an unknown command with a payload), and a
   payload may contain ``A5``. So the board discards everything until the line has been idle,
   then answers; the host, which is waiting for the answer, has stopped sending by then.
4. **Nothing changes on a rejected frame.** Checks come first: a write's payload is held in a
   frame buffer and reaches the bus only after its CRC has checked. The one error found during
   execution, ``BUS_TIMEOUT``, stops a block at the failing word: the words before it have been
   written (reads return no data). Reads have no side effects on the demo peripherals.
5. **No wedging.** Every state but hunting ends by itself: receiving and draining by the idle
   timeout, bus accesses by the bus timeout, responses by being sent. After any response the
   board hunts again.
6. **Stop-and-wait.** Bytes arriving while the board checks, executes or sends a response are
   not read (``i.ready`` is low); behind a UART receiver, which cannot wait, they are lost. The
   host must wait for each response (or, after a lost response, for the idle timeout).
"""

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..lib.config import check_int
from .bus import DATA_WIDTH, BusSignature, address_width, at_or_above
from .config import (
    CMD_READ_BLOCK, CMD_READ_REG, CMD_WRITE_BLOCK, CMD_WRITE_REG, MAX_WORDS_LIMIT,
    REQUEST_HEADER_BYTES, REQUEST_SYNC, RESPONSE_SYNC, STATUS_BAD_ADDRESS, STATUS_BAD_CRC,
    STATUS_BAD_LENGTH, STATUS_BUS_TIMEOUT, STATUS_OK, STATUS_TIMEOUT, STATUS_UNKNOWN_CMD, Region,
    WORD_BYTES,
)
from .crc import CRC16


__all__ = ["HostProtocol"]

_OWNER = "HostProtocol"


class HostProtocol(wiring.Component):
    """Frame parser and responder of the host link (the protocol is specified in the module
    docstring).

    Parameters
    ----------
    regions : sequence of :class:`~hw.host.config.Region`
        The bus address map (as placed by :func:`~hw.host.config.allocate_regions`), for the
        address range check.
    max_words : int
        Longest block, and depth of the frame buffer (one 32-bit word per entry).
    idle_timeout_cycles : int
        Clock cycles without a received byte that end a frame being received or drained.
    bus_timeout_cycles : int
        Clock cycles a bus access may wait for ``ack`` before it is abandoned.

    Interface attributes
    --------------------
    i : ``In(stream.Signature(8))``
        Received bytes (from :class:`~hw.host.uart.UARTRx`). ``i.ready`` is high while hunting,
        receiving and draining, and low from the cycle after a frame's last byte until its
        response has been handed to ``o`` (rule 6).
    o : ``Out(stream.Signature(8))``
        Response bytes (to :class:`~hw.host.uart.UARTTx`). ``o.valid``/``o.payload`` are
        registers, refilled in the very cycle their byte is taken, except right after the last
        byte of a data word (one cycle to fetch the next word): a consumer as slow as a UART
        transmitter never waits.
    bus : ``Out(BusSignature(address_width(regions)))``
        The initiator port. One access at a time, in address order; the buffer adds one cycle
        before each write.

    Latency, from the clock edge that takes a frame's last byte to the first cycle its response's
    first byte is offered on ``o``: ``2 + B`` for a read and ``2 + B + LEN`` for a write, where
    ``B`` is the bus time, the cycles ``req`` is high over all ``LEN`` words (1 per word on a
    :class:`~hw.host.peripherals.RegisterBank`, 2 on a :class:`~hw.host.peripherals.MemoryWindow`); the
    ``LEN`` is one buffer fetch per word. Rejected headers wait for the idle timeout (rule 3).
    """

    def __init__(self, *, regions, max_words, idle_timeout_cycles, bus_timeout_cycles):
        regions = tuple(regions)
        if not regions or not all(isinstance(r, Region) for r in regions):
            raise TypeError(f"{_OWNER}.regions must be a non-empty sequence of Region (placed by "
                            f"allocate_regions), not {regions!r}")
        self._regions = regions
        self._max_words = check_int("max_words", max_words, min=1, max=MAX_WORDS_LIMIT,
                                    owner=_OWNER)
        self._idle_timeout_cycles = check_int("idle_timeout_cycles", idle_timeout_cycles, min=2,
                                              owner=_OWNER)
        self._bus_timeout_cycles = check_int("bus_timeout_cycles", bus_timeout_cycles, min=2,
                                             owner=_OWNER)
        super().__init__({
            "i": In(stream.Signature(8)),
            "o": Out(stream.Signature(8)),
            "bus": Out(BusSignature(address_width(regions))),
        })

    @property
    def regions(self):
        return self._regions

    @property
    def max_words(self):
        return self._max_words

    @property
    def idle_timeout_cycles(self):
        return self._idle_timeout_cycles

    @property
    def bus_timeout_cycles(self):
        return self._bus_timeout_cycles

    def elaborate(self, platform):
        m = Module()

        m.submodules.rx_crc = rx_crc = CRC16()
        m.submodules.tx_crc = tx_crc = CRC16()
        # Holds a write's payload until its CRC has checked, and a read's words until all have
        # been read, so that neither a bad CRC nor a bus timeout leaves half a response sent.
        m.submodules.buffer = buffer = Memory(shape=DATA_WIDTH, depth=self._max_words, init=[])
        buf_w = buffer.write_port()
        buf_r = buffer.read_port()

        # Header fields, in wire order after the sync byte.
        cmd = Signal(8)
        seq = Signal(8)
        addr = Signal(32)
        count = Signal(16)
        fields = Cat(cmd, seq, addr, count)
        index = Signal(range(REQUEST_HEADER_BYTES))    # header byte expected next
        status = Signal(8)

        word_index = Signal(range(self._max_words + 1))
        byte_index = Signal(range(WORD_BYTES))
        word = Signal(DATA_WIDTH)
        idle = Signal(range(self._idle_timeout_cycles + 1))
        bus_wait = Signal(range(self._bus_timeout_cycles))

        is_write = (cmd == CMD_WRITE_REG) | (cmd == CMD_WRITE_BLOCK)
        is_reg = (cmd == CMD_READ_REG) | (cmd == CMD_WRITE_REG)
        known = is_reg | (cmd == CMD_READ_BLOCK) | (cmd == CMD_WRITE_BLOCK)
        length_ok = (count != 0) & (count <= self._max_words) & (~is_reg | (count == 1))
        end = addr + count
        in_range = Cat(at_or_above(addr, r.base) & (end <= r.end) for r in self._regions).any()
        last_word = word_index == count - 1

        received = self.i.valid & self.i.ready
        timed_out = idle == self._idle_timeout_cycles
        with m.If(received):
            m.d.sync += idle.eq(0)
        with m.Elif(~timed_out):
            m.d.sync += idle.eq(idle + 1)

        m.d.comb += [
            rx_crc.data.eq(self.i.payload),
            buf_r.addr.eq(word_index),
            buf_w.addr.eq(word_index),
            self.bus.addr.eq(addr + word_index),
            self.bus.we.eq(is_write),
            self.bus.w_data.eq(buf_r.data),
        ]

        # Response bytes are loaded into the ``o`` register whenever it is free; each loaded
        # byte but the CRC's is folded into the response CRC as it is loaded.
        o_free = ~self.o.valid | self.o.ready
        load = Signal()
        load_byte = Signal(8)
        fold = Signal()
        with m.If(self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        with m.If(load):
            m.d.sync += [self.o.payload.eq(load_byte), self.o.valid.eq(1)]
        m.d.comb += [tx_crc.data.eq(load_byte), tx_crc.en.eq(load & fold)]
        resp_count = Mux((status == STATUS_OK) & ~is_write, count, 0)
        resp_header = Array([Const(RESPONSE_SYNC, 8), cmd, seq, status,
                             resp_count[:8], resp_count[8:]])
        resp_index = Signal(range(len(resp_header)))

        def respond(code):
            m.d.sync += [status.eq(code), resp_index.eq(0)]
            m.next = "SEND_HEADER"

        with m.FSM():
            with m.State("HUNT"):
                m.d.comb += [self.i.ready.eq(1), tx_crc.clear.eq(1)]
                is_sync = self.i.payload == REQUEST_SYNC
                # The request CRC, cleared while the last response's header went out (or by
                # reset), includes the sync byte.
                m.d.comb += rx_crc.en.eq(received & is_sync)
                with m.If(received & is_sync):
                    m.d.sync += [fields.eq(0), index.eq(1)]
                    m.next = "HEADER"

            with m.State("HEADER"):
                m.d.comb += [self.i.ready.eq(1), rx_crc.en.eq(received)]
                with m.If(received):
                    with m.If(index <= len(fields) // 8):
                        m.d.sync += fields.word_select((index - 1)[:3], 8).eq(self.i.payload)
                    m.d.sync += index.eq(index + 1)
                    with m.If(index == REQUEST_HEADER_BYTES - 1):
                        m.next = "CHECK"
                with m.Elif(timed_out):
                    respond(STATUS_TIMEOUT)

            with m.State("CHECK"):
                m.d.sync += [word_index.eq(0), byte_index.eq(0), idle.eq(0), bus_wait.eq(0)]
                with m.If(~rx_crc.zero):
                    m.d.sync += status.eq(STATUS_BAD_CRC)
                    m.next = "DRAIN"
                with m.Elif(~known):
                    m.d.sync += status.eq(STATUS_UNKNOWN_CMD)
                    m.next = "DRAIN"
                with m.Elif(~length_ok):
                    m.d.sync += status.eq(STATUS_BAD_LENGTH)
                    m.next = "DRAIN"
                with m.Elif(~in_range):
                    m.d.sync += status.eq(STATUS_BAD_ADDRESS)
                    m.next = "DRAIN"
                with m.Elif(is_write):
                    m.d.comb += rx_crc.clear.eq(1)
                    m.next = "PAYLOAD"
                with m.Else():
                    m.next = "READ"

            with m.State("DRAIN"):
                m.d.comb += self.i.ready.eq(1)
                with m.If(timed_out):
                    m.d.sync += resp_index.eq(0)
                    m.next = "SEND_HEADER"

            with m.State("PAYLOAD"):
                m.d.comb += [self.i.ready.eq(1), rx_crc.en.eq(received)]
                data_phase = word_index != count
                with m.If(received):
                    m.d.sync += [word.eq(Cat(word[8:], self.i.payload)),
                                 byte_index.eq(byte_index + 1)]
                    with m.If(data_phase & (byte_index == WORD_BYTES - 1)):
                        m.d.comb += [buf_w.data.eq(Cat(word[8:], self.i.payload)),
                                     buf_w.en.eq(1)]
                        m.d.sync += word_index.eq(word_index + 1)
                    with m.If(~data_phase & (byte_index == 1)):
                        m.next = "PAYLOAD_CHECK"
                with m.Elif(timed_out):
                    respond(STATUS_TIMEOUT)

            with m.State("PAYLOAD_CHECK"):
                m.d.sync += word_index.eq(0)
                with m.If(rx_crc.zero):
                    m.next = "WRITE_FETCH"
                with m.Else():
                    respond(STATUS_BAD_CRC)

            with m.State("WRITE_FETCH"):
                # The buffer's read port shows word ``word_index`` from the next cycle on.
                m.d.sync += bus_wait.eq(0)
                m.next = "WRITE"

            with m.State("WRITE"):
                m.d.comb += self.bus.req.eq(1)
                m.d.sync += bus_wait.eq(bus_wait + 1)
                with m.If(self.bus.ack):
                    m.d.sync += word_index.eq(word_index + 1)
                    with m.If(last_word):
                        respond(STATUS_OK)
                    with m.Else():
                        m.next = "WRITE_FETCH"
                with m.Elif(bus_wait == self._bus_timeout_cycles - 1):
                    respond(STATUS_BUS_TIMEOUT)

            with m.State("READ"):
                m.d.comb += self.bus.req.eq(1)
                m.d.sync += bus_wait.eq(bus_wait + 1)
                with m.If(self.bus.ack):
                    m.d.comb += [buf_w.data.eq(self.bus.r_data), buf_w.en.eq(1)]
                    m.d.sync += [word_index.eq(word_index + 1), bus_wait.eq(0)]
                    with m.If(last_word):
                        m.d.sync += word_index.eq(0)
                        respond(STATUS_OK)
                with m.Elif(bus_wait == self._bus_timeout_cycles - 1):
                    respond(STATUS_BUS_TIMEOUT)

            with m.State("SEND_HEADER"):
                m.d.comb += [load_byte.eq(resp_header[resp_index]), fold.eq(1),
                             rx_crc.clear.eq(1)]
                with m.If(o_free):
                    m.d.comb += load.eq(1)
                    m.d.sync += resp_index.eq(resp_index + 1)
                    with m.If(resp_index == len(resp_header) - 1):
                        m.d.sync += byte_index.eq(0)
                        with m.If(resp_count != 0):
                            m.next = "SEND_DATA"
                        with m.Else():
                            m.next = "SEND_CRC_HIGH"

            with m.State("SEND_DATA"):
                # ``word_index`` is 0 (set when the read finished) and advances only on the last
                # byte of a word, so the buffer's read port has had a cycle to show the word.
                m.d.comb += [load_byte.eq(buf_r.data.word_select(byte_index, 8)), fold.eq(1)]
                with m.If(o_free):
                    m.d.comb += load.eq(1)
                    m.d.sync += byte_index.eq(byte_index + 1)
                    with m.If(byte_index == WORD_BYTES - 1):
                        m.d.sync += word_index.eq(word_index + 1)
                        with m.If(last_word):
                            m.next = "SEND_CRC_HIGH"
                        with m.Else():
                            m.next = "SEND_DATA_FETCH"

            with m.State("SEND_DATA_FETCH"):
                m.next = "SEND_DATA"

            with m.State("SEND_CRC_HIGH"):
                m.d.comb += load_byte.eq(tx_crc.crc[8:])
                with m.If(o_free):
                    m.d.comb += load.eq(1)
                    m.next = "SEND_CRC_LOW"

            with m.State("SEND_CRC_LOW"):
                m.d.comb += load_byte.eq(tx_crc.crc[:8])
                with m.If(o_free):
                    m.d.comb += load.eq(1)
                    m.next = "HUNT"

        return m
