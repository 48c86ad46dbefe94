package report

import (
	"cmp"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// columns are the KPIs the table and the CSV show, in order.
type column struct {
	name string
	val  func(*KPIs) string
}

// shown returns the columns for m: the period only when it is grouped.
func shown(m map[string]*KPIs) []column {
	for _, k := range m {
		if k.Bucket != "" {
			return columns
		}
	}
	return slices.DeleteFunc(slices.Clone(columns), func(c column) bool { return c.name == "period" })
}

var columns = []column{
	{"queue", func(k *KPIs) string { return k.Queue }},
	{"period", func(k *KPIs) string { return k.Bucket }},
	{"offered", func(k *KPIs) string { return strconv.Itoa(k.Offered) }},
	{"answered", func(k *KPIs) string { return strconv.Itoa(k.Answered) }},
	{"abandoned", func(k *KPIs) string { return strconv.Itoa(k.Abandoned) }},
	{"short_abandoned", func(k *KPIs) string { return strconv.Itoa(k.ShortAbandoned) }},
	{"deflected", func(k *KPIs) string { return strconv.Itoa(k.Deflected) }},
	{"exit_key", func(k *KPIs) string { return strconv.Itoa(k.ExitKey) }},
	{"timeout", func(k *KPIs) string { return strconv.Itoa(k.Timeout) }},
	{"exit_empty", func(k *KPIs) string { return strconv.Itoa(k.ExitEmpty) }},
	{"open", func(k *KPIs) string { return strconv.Itoa(k.Open) }},
	{"abandon_rate", func(k *KPIs) string { return pct(k.AbandonRate) }},
	{"asa_s", func(k *KPIs) string { return secs(k.ASA) }},
	{"aht_s", func(k *KPIs) string { return secs(k.AHT) }},
	{"sl_answered", func(k *KPIs) string { return pct(k.SLAnswered) }},
	{"sl_offered", func(k *KPIs) string { return pct(k.SLOffered) }},
	{"sl2", func(k *KPIs) string { return pct(k.SL2) }},
}

func pct(f float64) string        { return strconv.FormatFloat(100*f, 'f', 1, 64) }
func secs(d time.Duration) string { return strconv.FormatFloat(d.Seconds(), 'f', 1, 64) }
func sorted(m map[string]*KPIs) []*KPIs {
	out := make([]*KPIs, 0, len(m))
	for _, k := range m {
		out = append(out, k)
	}
	slices.SortFunc(out, func(a, b *KPIs) int {
		return cmp.Or(strings.Compare(a.Queue, b.Queue), strings.Compare(a.Bucket, b.Bucket))
	})
	return out
}

// WriteTable writes the KPIs as an aligned terminal table, one queue a
// row; rates are percentages, times seconds.
func WriteTable(w io.Writer, m map[string]*KPIs) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	columns := shown(m)
	for i, c := range columns {
		fmt.Fprint(tw, c.name, "\t")
		if i == len(columns)-1 {
			fmt.Fprintln(tw)
		}
	}
	for _, k := range sorted(m) {
		for _, c := range columns {
			fmt.Fprint(tw, c.val(k), "\t")
		}
		fmt.Fprintln(tw)
	}
	return tw.Flush()
}

// WriteCSV writes the same columns as CSV, with a header row.
func WriteCSV(w io.Writer, m map[string]*KPIs) error {
	cw := csv.NewWriter(w)
	columns := shown(m)
	head := make([]string, len(columns))
	for i, c := range columns {
		head[i] = c.name
	}
	cw.Write(head)
	for _, k := range sorted(m) {
		row := make([]string, len(columns))
		for i, c := range columns {
			row[i] = c.val(k)
		}
		cw.Write(row)
	}
	cw.Flush()
	return cw.Error()
}

// WriteJSON writes the KPIs as a JSON array by queue, rates as fractions
// and times in seconds.
func WriteJSON(w io.Writer, m map[string]*KPIs) error {
	type out struct {
		Queue          string  `json:"queue"`
		Period         string  `json:"period,omitempty"`
		Offered        int     `json:"offered"`
		Answered       int     `json:"answered"`
		Abandoned      int     `json:"abandoned"`
		ShortAbandoned int     `json:"short_abandoned"`
		Deflected      int     `json:"deflected"`
		ExitKey        int     `json:"exit_key"`
		Timeout        int     `json:"timeout"`
		ExitEmpty      int     `json:"exit_empty"`
		Open           int     `json:"open"`
		Transferred    int     `json:"transferred"`
		RingNoAnswers  int     `json:"ring_no_answers"`
		AbandonRate    float64 `json:"abandon_rate"`
		ASASeconds     float64 `json:"asa_seconds"`
		AHTSeconds     float64 `json:"aht_seconds"`
		SLAnswered     float64 `json:"sl_answered"`
		SLOffered      float64 `json:"sl_offered"`
		SL2            float64 `json:"sl2"`
		// The distributions: quantiles of answered waits and of abandon
		// times, in seconds.
		WaitP50    float64 `json:"answered_wait_p50_seconds"`
		WaitP90    float64 `json:"answered_wait_p90_seconds"`
		AbandonP50 float64 `json:"abandon_time_p50_seconds"`
		AbandonP90 float64 `json:"abandon_time_p90_seconds"`
	}
	var rows []out
	for _, k := range sorted(m) {
		rows = append(rows, out{k.Queue, k.Bucket, k.Offered, k.Answered, k.Abandoned, k.ShortAbandoned, k.Deflected, k.ExitKey,
			k.Timeout, k.ExitEmpty, k.Open, k.Transferred, k.RingNoAnswers,
			k.AbandonRate, k.ASA.Seconds(), k.AHT.Seconds(), k.SLAnswered, k.SLOffered, k.SL2,
			Quantile(k.AnsweredWaits, 0.5).Seconds(), Quantile(k.AnsweredWaits, 0.9).Seconds(),
			Quantile(k.AbandonWaits, 0.5).Seconds(), Quantile(k.AbandonWaits, 0.9).Seconds()})
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rows)
}
