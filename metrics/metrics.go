// Package metrics exposes the counters of a [party.Host] to Prometheus. It
// is a module of its own, so that the party module keeps no dependency on
// the Prometheus client.
//
// [NewCollector] reads [party.Host.Stats] at each scrape; nothing is counted
// twice and nothing runs between scrapes. Every series carries the label
// party, the party's name; rooms and connections are never labels, so the
// number of series does not grow with traffic. The series, all prefixed
// party_:
//
//	rooms                          gauge      rooms in memory
//	connections                    gauge      WebSockets open
//	connections_opened_total       counter    upgrades that succeeded
//	connections_closed_total       counter    by reason: client, server, replaced, slow, too_big,
//	                                          invalid_utf8, keepalive, write_timeout, broken,
//	                                          shutdown, internal_error, moved (see party.CloseReason)
//	messages_received_total        counter    messages read from clients
//	received_bytes_total           counter    their payload bytes
//	messages_sent_total            counter    messages written to sockets
//	sent_bytes_total               counter    their payload bytes
//	sends_refused_total            counter    Sends that returned an error
//	upgrades_refused_total         counter    by status: the HTTP status ("other" outside 400–599)
//	handler_panics_total           counter    by handler: OnStart, OnConnect, ... Call
//	handler_duration_seconds       histogram  by handler; buckets 10µs to 10s, tenfold
//
// Upgrades refused for a URL that names no registered party are counted
// with party="". Each figure means exactly what its field of
// [party.PartyStats] documents.
//
// The names are fixed: to serve two Hosts from one registry, register each
// collector through [prometheus.WrapRegistererWith] with a label of your
// own.
package metrics

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"party"
)

// NewCollector returns a Collector of h's counters, read with h.Stats at
// each scrape (safe at any time, during and after h.Shutdown). Register it
// once per registry.
func NewCollector(h *party.Host) prometheus.Collector {
	return &collector{
		host:         h,
		rooms:        desc("rooms", "Rooms in memory, idle ones included until they are dropped."),
		connections:  desc("connections", "WebSocket connections open."),
		opened:       desc("connections_opened_total", "WebSocket upgrades that succeeded."),
		closed:       desc("connections_closed_total", "Connections ended, by the first reason each closed for.", "reason"),
		msgsIn:       desc("messages_received_total", "Messages read in full from clients."),
		bytesIn:      desc("received_bytes_total", "Payload bytes of the messages read from clients."),
		msgsOut:      desc("messages_sent_total", "Messages written to sockets."),
		bytesOut:     desc("sent_bytes_total", "Payload bytes of the messages written to sockets."),
		sendsRefused: desc("sends_refused_total", "Calls to Send (one per Broadcast recipient) that returned an error: the connection was closed, or its send queue overflowed."),
		refused:      desc("upgrades_refused_total", "WebSocket upgrades refused with an HTTP response, by status.", "status"),
		panics:       desc("handler_panics_total", "Panics recovered from handlers, by handler.", "handler"),
		durations:    desc("handler_duration_seconds", "How long handler calls took, panics included, by handler.", "handler"),
	}
}

// desc describes the series party_{name}, labelled party and label (if any).
func desc(name, help string, label ...string) *prometheus.Desc {
	return prometheus.NewDesc("party_"+name, help, append([]string{"party"}, label...), nil)
}

type collector struct {
	host *party.Host

	rooms, connections, opened, closed, msgsIn, bytesIn, msgsOut, bytesOut,
	sendsRefused, refused, panics, durations *prometheus.Desc
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.rooms, c.connections, c.opened, c.closed, c.msgsIn, c.bytesIn,
		c.msgsOut, c.bytesOut, c.sendsRefused, c.refused, c.panics, c.durations} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	s := c.host.Stats()
	for name, ps := range s.Parties {
		c.collectParty(ch, name, ps)
	}
	c.collectRefused(ch, "", s.UpgradesRefused)
}

func (c *collector) collectParty(ch chan<- prometheus.Metric, name string, ps party.PartyStats) {
	gauge := func(d *prometheus.Desc, v int64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v), name)
	}
	counter := func(d *prometheus.Desc, v uint64, label ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), append([]string{name}, label...)...)
	}
	gauge(c.rooms, ps.Rooms)
	gauge(c.connections, ps.Connections)
	counter(c.opened, ps.ConnectionsOpened)
	for reason, n := range ps.ConnectionsClosed {
		counter(c.closed, n, reason.String())
	}
	counter(c.msgsIn, ps.MessagesReceived)
	counter(c.bytesIn, ps.BytesReceived)
	counter(c.msgsOut, ps.MessagesSent)
	counter(c.bytesOut, ps.BytesSent)
	counter(c.sendsRefused, ps.SendsRefused)
	c.collectRefused(ch, name, ps.UpgradesRefused)
	for handler, n := range ps.HandlerPanics {
		counter(c.panics, n, handler)
	}
	for handler, h := range ps.HandlerDurations {
		buckets := make(map[float64]uint64, len(h.Buckets))
		for _, b := range h.Buckets {
			buckets[b.UpperBound.Seconds()] = b.Count
		}
		ch <- prometheus.MustNewConstHistogram(c.durations, h.Count, h.Sum.Seconds(), buckets, name, handler)
	}
}

func (c *collector) collectRefused(ch chan<- prometheus.Metric, name string, byStatus map[int]uint64) {
	for status, n := range byStatus {
		label := "other"
		if status != 0 {
			label = strconv.Itoa(status)
		}
		ch <- prometheus.MustNewConstMetric(c.refused, prometheus.CounterValue, float64(n), name, label)
	}
}
