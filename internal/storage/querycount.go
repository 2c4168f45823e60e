package storage

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"io"
	"sync/atomic"
)

// QueryCounter counts the SQL statements a Store runs, for benchmarks and
// tests that bound how many queries an operation costs. Set it in
// Options.Queries; read it with Load before and after the operation.
//
// It counts every statement sent through the store's connection pools
// (the SQLite writer and read pool, the PostgreSQL pool): each Exec and
// Query, whether run directly, in a transaction or through a prepared
// statement, whatever its outcome. It does not count what the drivers do on
// their own: beginning, committing and rolling back transactions, pings,
// preparing a statement, and the pragmas SQLite runs on a new connection.
// Background work (the janitor, other requests) counts too, so measure
// with nothing else running.
type QueryCounter struct{ n atomic.Int64 }

// Load returns how many statements have been counted.
func (c *QueryCounter) Load() int64 { return c.n.Load() }

func (c *QueryCounter) add() { c.n.Add(1) }

// sqlOpen is sql.Open, with every statement the pool runs counted in qc.
// With qc nil it is sql.Open itself: nothing sits between database/sql and
// the driver.
func sqlOpen(driverName, dsn string, qc *QueryCounter) (*sql.DB, error) {
	db, err := sql.Open(driverName, dsn)
	if err != nil || qc == nil {
		return db, err
	}
	// sql.Open connects to nothing; this one only found the driver.
	drv := db.Driver()
	db.Close()
	var c driver.Connector = dsnConnector{drv: drv, dsn: dsn}
	if dc, ok := drv.(driver.DriverContext); ok {
		if c, err = dc.OpenConnector(dsn); err != nil {
			return nil, err
		}
	}
	return sql.OpenDB(countingConnector{c: c, qc: qc}), nil
}

// dsnConnector is the connector of a driver without one of its own, as
// database/sql makes for it.
type dsnConnector struct {
	drv driver.Driver
	dsn string
}

func (c dsnConnector) Connect(context.Context) (driver.Conn, error) { return c.drv.Open(c.dsn) }
func (c dsnConnector) Driver() driver.Driver                        { return c.drv }

// countingConnector hands out counting connections.
type countingConnector struct {
	c  driver.Connector
	qc *QueryCounter
}

func (c countingConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.c.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return &countingConn{Conn: conn, qc: c.qc}, nil
}

func (c countingConnector) Driver() driver.Driver {
	return countingDriver{Driver: c.c.Driver(), qc: c.qc}
}

// Close closes the wrapped connector if it needs closing (sql.DB.Close
// calls it).
func (c countingConnector) Close() error {
	if cl, ok := c.c.(io.Closer); ok {
		return cl.Close()
	}
	return nil
}

// countingDriver is what countingConnector.Driver reports.
type countingDriver struct {
	driver.Driver
	qc *QueryCounter
}

func (d countingDriver) Open(name string) (driver.Conn, error) {
	conn, err := d.Driver.Open(name)
	if err != nil {
		return nil, err
	}
	return &countingConn{Conn: conn, qc: d.qc}, nil
}

// countingConn counts the statements run on a driver connection. It
// implements every optional interface database/sql looks for, passing each
// to the driver's connection or, where that lacks it, doing what
// database/sql would do without it.
type countingConn struct {
	driver.Conn
	qc *QueryCounter
}

var (
	_ driver.ConnPrepareContext = (*countingConn)(nil)
	_ driver.ConnBeginTx        = (*countingConn)(nil)
	_ driver.ExecerContext      = (*countingConn)(nil)
	_ driver.QueryerContext     = (*countingConn)(nil)
	_ driver.Pinger             = (*countingConn)(nil)
	_ driver.SessionResetter    = (*countingConn)(nil)
	_ driver.Validator          = (*countingConn)(nil)
	_ driver.NamedValueChecker  = (*countingConn)(nil)
)

func (c *countingConn) Prepare(query string) (driver.Stmt, error) {
	return c.PrepareContext(context.Background(), query)
}

func (c *countingConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	var st driver.Stmt
	var err error
	if p, ok := c.Conn.(driver.ConnPrepareContext); ok {
		st, err = p.PrepareContext(ctx, query)
	} else {
		st, err = c.Conn.Prepare(query)
	}
	if err != nil {
		return nil, err
	}
	return &countingStmt{Stmt: st, qc: c.qc}, nil
}

func (c *countingConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	if b, ok := c.Conn.(driver.ConnBeginTx); ok {
		return b.BeginTx(ctx, opts)
	}
	if opts.Isolation != driver.IsolationLevel(sql.LevelDefault) || opts.ReadOnly {
		return nil, errors.New("storage: driver does not support transaction options")
	}
	return c.Conn.Begin()
}

// ExecContext runs the statement directly when the driver can; its
// driver.ErrSkip sends database/sql to PrepareContext, whose statement
// counts instead.
func (c *countingConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	e, ok := c.Conn.(driver.ExecerContext)
	if !ok {
		return nil, driver.ErrSkip
	}
	res, err := e.ExecContext(ctx, query, args)
	if err != driver.ErrSkip {
		c.qc.add()
	}
	return res, err
}

// QueryContext is ExecContext's twin.
func (c *countingConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	q, ok := c.Conn.(driver.QueryerContext)
	if !ok {
		return nil, driver.ErrSkip
	}
	rows, err := q.QueryContext(ctx, query, args)
	if err != driver.ErrSkip {
		c.qc.add()
	}
	return rows, err
}

func (c *countingConn) Ping(ctx context.Context) error {
	if p, ok := c.Conn.(driver.Pinger); ok {
		return p.Ping(ctx)
	}
	return nil
}

func (c *countingConn) ResetSession(ctx context.Context) error {
	if r, ok := c.Conn.(driver.SessionResetter); ok {
		return r.ResetSession(ctx)
	}
	return nil
}

func (c *countingConn) IsValid() bool {
	if v, ok := c.Conn.(driver.Validator); ok {
		return v.IsValid()
	}
	return true
}

// CheckNamedValue passes arguments to the driver's checker; driver.ErrSkip
// makes database/sql convert them as it would for a driver without one.
func (c *countingConn) CheckNamedValue(nv *driver.NamedValue) error {
	if ch, ok := c.Conn.(driver.NamedValueChecker); ok {
		return ch.CheckNamedValue(nv)
	}
	return driver.ErrSkip
}

// countingStmt counts each execution of a prepared statement.
type countingStmt struct {
	driver.Stmt
	qc *QueryCounter
}

var (
	_ driver.StmtExecContext  = (*countingStmt)(nil)
	_ driver.StmtQueryContext = (*countingStmt)(nil)
)

func (s *countingStmt) Exec(args []driver.Value) (driver.Result, error) {
	s.qc.add()
	return s.Stmt.Exec(args)
}

func (s *countingStmt) Query(args []driver.Value) (driver.Rows, error) {
	s.qc.add()
	return s.Stmt.Query(args)
}

func (s *countingStmt) ExecContext(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	if e, ok := s.Stmt.(driver.StmtExecContext); ok {
		s.qc.add()
		return e.ExecContext(ctx, args)
	}
	vals, err := namedToValues(args)
	if err != nil {
		return nil, err
	}
	return s.Exec(vals)
}

func (s *countingStmt) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	if q, ok := s.Stmt.(driver.StmtQueryContext); ok {
		s.qc.add()
		return q.QueryContext(ctx, args)
	}
	vals, err := namedToValues(args)
	if err != nil {
		return nil, err
	}
	return s.Query(vals)
}

// namedToValues is database/sql's conversion for a statement that takes
// positional values only.
func namedToValues(args []driver.NamedValue) ([]driver.Value, error) {
	out := make([]driver.Value, len(args))
	for i, a := range args {
		if a.Name != "" {
			return nil, errors.New("storage: driver does not support named parameters")
		}
		out[i] = a.Value
	}
	return out, nil
}
