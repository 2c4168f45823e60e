package modhost

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are per module and callback; Synapse has them only for spam,
// media and ratelimit callbacks, Sluice for every callback.
type metrics struct {
	calls     *prometheus.CounterVec
	latency   *prometheus.HistogramVec
	decisions *prometheus.CounterVec
	errors    *prometheus.CounterVec
	timeouts  *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	labels := []string{"module", "callback"}
	m := &metrics{
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_module_callback_calls_total",
			Help: "Module callback invocations.",
		}, labels),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "sluice_module_callback_duration_seconds",
			Help:    "Time a module callback took, up to its deadline.",
			Buckets: []float64{.0001, .0005, .001, .005, .01, .05, .1, .5, 1, 5, 10, 30},
		}, labels),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_module_callback_decisions_total",
			Help: "Answers of module callbacks that returned normally, by decision.",
		}, append(labels, "decision")),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_module_callback_errors_total",
			Help: "Module callbacks that failed, by kind (error, panic, timeout, invalid).",
		}, append(labels, "kind")),
		timeouts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_module_callback_timeouts_total",
			Help: "Module callbacks that outlived their deadline.",
		}, labels),
	}
	if reg != nil {
		reg.MustRegister(m.calls, m.latency, m.decisions, m.errors, m.timeouts)
	}
	return m
}

func (m *metrics) observe(module, callback string, d time.Duration) {
	m.calls.WithLabelValues(module, callback).Inc()
	m.latency.WithLabelValues(module, callback).Observe(d.Seconds())
}

func (m *metrics) decision(module, callback, decision string) {
	m.decisions.WithLabelValues(module, callback, decision).Inc()
}

func (m *metrics) failure(module, callback string, kind FailureKind) {
	m.errors.WithLabelValues(module, callback, string(kind)).Inc()
	if kind == FailTimeout {
		m.timeouts.WithLabelValues(module, callback).Inc()
	}
}
