package storage

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
)

// Group commit.
//
// PersistEvent does not write by itself: it queues its event for the
// store's one group writer goroutine and waits. The writer takes everything
// queued (up to maxBatch), runs it in ONE transaction, each event inside its
// own SAVEPOINT, commits once and answers every caller. One commit, and so
// one fsync on SQLite (synchronous=FULL) or one WAL flush on PostgreSQL,
// covers the whole batch; while a batch commits the next one accumulates,
// so under load batches grow by themselves and at low load an event waits
// for nothing but its own commit.
//
// A call that fails (a duplicate event ID, a reused transaction key, an
// unknown room ...) is rolled back to its savepoint and gets its own error;
// the others of the batch are unaffected. (A call alone in its batch runs
// without a savepoint, which would only cost round trips: if it fails, the
// transaction is rolled back.) A batch in which every call failed is rolled
// back rather than committed. Should the transaction itself break (a
// savepoint cannot be rolled back, as when SQLite has rolled the whole
// transaction back after an I/O error), the call that broke it gets its
// error and every other call of the batch is run again in a new
// transaction. If the commit fails, every call of the batch gets the
// commit's error.
//
// Cancellation: a caller whose context ends before the writer reaches its
// event gets ctx.Err() and its event is not written. Once the writer has
// started on an event, the caller waits for the outcome, which stands
// whatever happens to its context. The transaction itself runs without a
// deadline: a commit interrupted half-way would leave callers unable to
// tell whether their events were written.
//
// On SQLite the writer uses the store's single write connection like every
// other write, holding it only for the duration of a batch's transaction,
// so other writes queue for it between batches rather than deadlocking.
// Nothing run inside the batch transaction may use s.w directly.

// Batch caps. A PostgreSQL backend caches the IDs of at most 64
// subtransactions (savepoints that wrote, released or not) of its open
// transaction in shared memory; a transaction with more "overflows" the
// cache, which slows every other session's snapshots while it is open.
// SQLite savepoints cost nothing comparable.
const (
	maxBatchSQLite   = 256
	maxBatchPostgres = 64
)

// The states of a persistReq. A request goes from pending to running when
// the writer starts on it, or from pending to withdrawn when its caller's
// context ends first; whoever moves it out of pending decides its fate.
const (
	reqPending int32 = iota
	reqRunning
	reqWithdrawn
)

type persistReq struct {
	ctx   context.Context
	ev    NewEvent
	state atomic.Int32
	done  chan persistAnswer // buffered: the writer never waits for the caller
}

type persistAnswer struct {
	res PersistResult
	err error
}

func (r *persistReq) answer(res PersistResult, err error) {
	r.done <- persistAnswer{res, err}
}

// claim is called by the writer when it reaches r. It reports whether the
// writer should run r: false when the caller withdrew, or when the
// caller's context has ended, in which case claim answers ctx.Err() for it.
// A request already claimed (being run again after a broken transaction)
// stays claimed.
func (r *persistReq) claim() bool {
	if r.state.Load() == reqRunning {
		return true
	}
	if err := r.ctx.Err(); err != nil {
		if r.state.CompareAndSwap(reqPending, reqWithdrawn) {
			r.answer(PersistResult{}, err)
		}
		return false
	}
	return r.state.CompareAndSwap(reqPending, reqRunning)
}

type groupWriter struct {
	db       *sql.DB
	maxBatch int
	prepared map[string]*sql.Stmt // SQLite: see batchTx

	mu     sync.Mutex
	queue  []*persistReq
	closed bool

	wake    chan struct{} // capacity 1: "the queue may have changed"
	stopped chan struct{} // closed when the writer goroutine has exited

	// Test hooks, set before the first PersistEvent: onBatch is called with
	// the size of each batch the writer takes from the queue, onRun with the
	// event ID each time the writer starts on an event, inside the batch
	// transaction (so it must not write through the store). An error from
	// onRun is taken as the transaction breaking on that event.
	onBatch func(n int)
	onRun   func(eventID string) error
}

// newGroupWriter starts the writer. prepared, when not nil, are statements
// prepared on db for batchTx; the writer closes them when it stops.
func newGroupWriter(db *sql.DB, maxBatch int, prepared map[string]*sql.Stmt) *groupWriter {
	w := &groupWriter{
		db:       db,
		maxBatch: maxBatch,
		prepared: prepared,
		wake:     make(chan struct{}, 1),
		stopped:  make(chan struct{}),
	}
	go w.loop()
	return w
}

func (w *groupWriter) signal() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// persist queues e and waits for the writer's answer or the end of ctx.
func (w *groupWriter) persist(ctx context.Context, e NewEvent) (PersistResult, error) {
	if err := ctx.Err(); err != nil {
		return PersistResult{}, err
	}
	r := &persistReq{ctx: ctx, ev: e, done: make(chan persistAnswer, 1)}
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return PersistResult{}, ErrClosed
	}
	w.queue = append(w.queue, r)
	w.mu.Unlock()
	w.signal()

	select {
	case a := <-r.done:
		return a.res, a.err
	case <-ctx.Done():
		if r.state.CompareAndSwap(reqPending, reqWithdrawn) {
			// The writer will skip it.
			return PersistResult{}, ctx.Err()
		}
		// The writer got there first; its outcome stands.
		a := <-r.done
		return a.res, a.err
	}
}

// queued reports how many requests wait for the writer (for tests).
func (w *groupWriter) queued() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.queue)
}

// close stops accepting requests, lets the writer finish every queued one
// and waits for it to exit.
func (w *groupWriter) close() {
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
	w.signal()
	<-w.stopped
}

func (w *groupWriter) isClosed() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.closed
}

func (w *groupWriter) loop() {
	defer close(w.stopped)
	defer closeStatements(w.prepared)
	for {
		batch, ok := w.next()
		if !ok {
			return
		}
		if w.onBatch != nil {
			w.onBatch(len(batch))
		}
		for len(batch) > 0 {
			batch = w.runTx(batch)
		}
	}
}

// next waits for requests and takes up to maxBatch of them off the queue,
// oldest first. It returns false once the writer is closed and the queue
// is empty.
func (w *groupWriter) next() ([]*persistReq, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for len(w.queue) == 0 {
		if w.closed {
			return nil, false
		}
		w.mu.Unlock()
		<-w.wake
		w.mu.Lock()
	}
	n := min(len(w.queue), w.maxBatch)
	batch := make([]*persistReq, n)
	copy(batch, w.queue)
	rest := copy(w.queue, w.queue[n:])
	clear(w.queue[rest:])
	w.queue = w.queue[:rest]
	return batch, true
}

// batchCall is a request the writer ran in the current transaction.
type batchCall struct {
	r   *persistReq
	res PersistResult
	err error
}

// runTx runs batch in one transaction and answers its requests. If the
// transaction breaks it answers the request that broke it and returns the
// others, to be run again in a new transaction.
func (w *groupWriter) runTx(batch []*persistReq) (again []*persistReq) {
	// Requests whose callers gave up while queued need no transaction.
	live := batch[:0]
	for _, r := range batch {
		if r.state.Load() == reqRunning || (r.ctx.Err() == nil && r.state.Load() == reqPending) {
			live = append(live, r)
		} else {
			r.claim() // answers ctx.Err() unless the caller withdrew
		}
	}
	if len(live) == 0 {
		return nil
	}

	ctx := context.Background()
	sqlTx, err := w.db.BeginTx(ctx, nil)
	if err != nil {
		err = fmt.Errorf("storage: persist events: begin transaction: %w", err)
		for _, r := range live {
			if r.claim() {
				r.answer(PersistResult{}, err)
			}
		}
		return nil
	}
	tx := &batchTx{tx: sqlTx, prepared: w.prepared}
	calls := make([]batchCall, 0, len(live))
	for i, r := range live {
		if !r.claim() {
			continue
		}
		var res PersistResult
		var err, broken error
		if w.onRun != nil {
			broken = w.onRun(r.ev.EventID)
		}
		switch {
		case broken != nil:
		case len(live) == 1:
			// Alone in the transaction, the call needs no savepoint: if it
			// fails, the transaction is rolled back below.
			res, err = persistOne(ctx, tx, r.ev)
		default:
			res, err, broken = runSavepoint(ctx, tx, r.ev)
		}
		if broken != nil {
			// The transaction is unusable, and nothing of it will be
			// committed: answer the call that broke it, and run the
			// others again, including those that had succeeded or failed
			// in it (a failure such as ErrEventExists may have been caused
			// by a call before it in the lost transaction).
			sqlTx.Rollback()
			if err == nil {
				err = broken
			}
			r.answer(PersistResult{}, err)
			for _, c := range calls {
				again = append(again, c.r)
			}
			return append(again, live[i+1:]...)
		}
		calls = append(calls, batchCall{r, res, err})
	}
	if !slices.ContainsFunc(calls, func(c batchCall) bool { return c.err == nil }) {
		// Nothing to commit (and no fsync to pay for).
		sqlTx.Rollback()
		for _, c := range calls {
			c.r.answer(c.res, c.err)
		}
		return nil
	}
	if err := sqlTx.Commit(); err != nil {
		err = fmt.Errorf("storage: persist events: commit: %w", err)
		for _, c := range calls {
			c.r.answer(PersistResult{}, err)
		}
		return nil
	}
	for _, c := range calls {
		c.r.answer(c.res, c.err)
	}
	return nil
}

// runSavepoint persists one event inside its own savepoint of tx. err is
// the event's own failure, after which the savepoint has been rolled back;
// broken, when not nil, means the transaction can no longer be used.
//
// One savepoint, always named the same, serves the whole batch: after a
// call succeeds the next call releases it and opens it anew; after a call
// fails and the savepoint is rolled back to, it is fresh and the next call
// runs in it as it is. The commit releases the last one.
func runSavepoint(ctx context.Context, tx *batchTx, e NewEvent) (res PersistResult, err, broken error) {
	if err := tx.openSavepoint(ctx); err != nil {
		return PersistResult{}, nil, fmt.Errorf("storage: persist event %s: savepoint: %w", e.EventID, err)
	}
	res, err = persistOne(ctx, tx, e)
	if err == nil {
		tx.savepoint = savepointUsed
		return res, nil, nil
	}
	if _, rbErr := tx.ExecContext(ctx, sqlRollbackSavepoint); rbErr != nil {
		return PersistResult{}, err, fmt.Errorf("storage: persist event %s: roll back to savepoint: %w", e.EventID, rbErr)
	}
	tx.savepoint = savepointFresh
	return PersistResult{}, err, nil
}
