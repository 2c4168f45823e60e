package storage

// Hooks into the group writer for the external tests.

// SetWriterHooks installs the group writer's test hooks; call it before the
// store's first PersistEvent. onBatch gets the size of every batch the
// writer takes from its queue; onRun the ID of every event the writer
// starts on, from inside the batch transaction (so it must not write
// through the store); an error it returns is taken as the transaction
// breaking on that event. Either may be nil.
func SetWriterHooks(st Store, onBatch func(n int), onRun func(eventID string) error) {
	w := st.(*sqlStore).writer
	w.onBatch, w.onRun = onBatch, onRun
}

// QueuedPersists is how many PersistEvent calls wait for the writer to
// take them.
func QueuedPersists(st Store) int { return st.(*sqlStore).writer.queued() }

// WriterClosed reports whether Close has stopped PersistEvent taking new
// events.
func WriterClosed(st Store) bool { return st.(*sqlStore).writer.isClosed() }

// StateSnapshotInterval is how many deltas make a state group chain.
const StateSnapshotInterval = stateSnapshotInterval
