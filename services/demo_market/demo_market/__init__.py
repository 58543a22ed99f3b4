"""Deterministic demo MBO data: a realistic session of three instruments, written as a real DBN v3 file.

The session holds a crude-oil future, an equity-index future and a stock quoted by two publishers (so the
consolidated book means something). Each book opens with a Clear and a snapshot of resting orders
(F_SNAPSHOT, the last one also F_LAST), then lives: adds, full and partial cancels, modifies (a smaller size
keeps queue priority, a new price or a larger size loses it) and trades. A trade is one event: a Trade record
per price level (aggressor's side and order id), a Fill per resting order hit, then the Cancel of each order
filled in full, the Modify of one filled in part and now and then the Add of the aggressor's remainder; only
its last record carries F_LAST. A fair price per instrument walks a tick at a time and the books follow it.

The simulator keeps its own copy of every book, so it never cancels or modifies an order that does not rest,
never cancels more than rests, and never quotes a price that locks or crosses the consolidated book. Records
are built and written a chunk at a time (memory stays flat in the record count), and the same arguments give
a byte-identical file.

Modules: ``instruments`` (what is traded), ``simulator`` (the books and their events), ``records`` (events
as DBN MBO records with timestamps), ``writer`` (the file: defaults, metadata, writing).

Units: prices are fixed-point integers (1e-9); timestamps and latencies are UNIX nanoseconds.
"""
