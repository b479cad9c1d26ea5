package main

import (
	"encoding/json"
	"fmt"
	"html"
	"math"
	"os"
	"strings"
)

// plotFiles plots the results saved in files (by -json) into one SVG.
func plotFiles(files []string, out string) error {
	var runs []loadResult
	for _, f := range files {
		b, err := os.ReadFile(strings.TrimSpace(f))
		if err != nil {
			return err
		}
		var r loadResult
		if err := json.Unmarshal(b, &r); err != nil {
			return fmt.Errorf("loadtest: %s: %w", f, err)
		}
		runs = append(runs, r)
	}
	return writePlot(out, runs)
}

// Plot geometry, in SVG user units.
const (
	plotW, plotH             = 760, 440
	plotLeft, plotRight      = 70, 190
	plotTop, plotBottom      = 40, 60
	plotInnerW, plotInnerH   = plotW - plotLeft - plotRight, plotH - plotTop - plotBottom
	plotMinMs, plotMaxMsCeil = 0.1, 10000.0
)

var plotColors = []string{"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"}

// writePlot draws ack latency (p50 solid, p99 dashed, log scale) against
// the load each step achieved (acks per second), one colour per run.
func writePlot(path string, runs []loadResult) error {
	maxX, maxY := 1.0, 1.0
	for _, r := range runs {
		for _, s := range r.Steps {
			maxX = math.Max(maxX, math.Max(s.Rate, s.Throughput))
			maxY = math.Max(maxY, s.Ack.P99)
		}
	}
	maxX = niceCeil(maxX)
	maxY = math.Min(math.Pow(10, math.Ceil(math.Log10(maxY))), plotMaxMsCeil)
	x := func(v float64) float64 { return plotLeft + v/maxX*plotInnerW }
	y := func(ms float64) float64 {
		ms = math.Min(math.Max(ms, plotMinMs), maxY)
		return plotTop + plotInnerH*(1-math.Log10(ms/plotMinMs)/math.Log10(maxY/plotMinMs))
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", plotW, plotH, plotW, plotH)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", plotW, plotH)
	fmt.Fprintf(&b, `<text x="%d" y="22" font-size="14">Slack ack latency against load (p50 solid, p99 dashed)</text>`+"\n", plotLeft)
	for ms := plotMinMs; ms <= maxY*1.0001; ms *= 10 {
		fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#ddd"/><text x="%d" y="%.1f" text-anchor="end">%g ms</text>`+"\n",
			plotLeft, plotLeft+plotInnerW, y(ms), y(ms), plotLeft-6, y(ms)+4, ms)
	}
	for i := 0; i <= 5; i++ {
		v := maxX * float64(i) / 5
		fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%d" y2="%d" stroke="#ddd"/><text x="%.1f" y="%d" text-anchor="middle">%g</text>`+"\n",
			x(v), x(v), plotTop, plotTop+plotInnerH, x(v), plotTop+plotInnerH+16, v)
	}
	fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle">acks per second (dots: steps at a fixed rate; rings: flat out, at what it reached)</text>`+"\n",
		plotLeft+plotInnerW/2, plotH-18)
	for i, r := range runs {
		color := plotColors[i%len(plotColors)]
		for _, q := range []struct {
			dash string
			get  func(stepResult) float64
		}{{"", func(s stepResult) float64 { return s.Ack.P50 }}, {` stroke-dasharray="5,4"`, func(s stepResult) float64 { return s.Ack.P99 }}} {
			// Steps at a fixed rate make the line; a flat-out step is a
			// hollow mark at what it reached, as it is another kind of run.
			var pts []string
			for _, s := range r.Steps {
				px, py := x(s.Throughput), y(q.get(s))
				if s.Rate == 0 {
					fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="5" fill="white" stroke="%s" stroke-width="2"/>`+"\n", px, py, color)
					continue
				}
				pts = append(pts, fmt.Sprintf("%.1f,%.1f", px, py))
				fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="3" fill="%s"/>`+"\n", px, py, color)
			}
			if len(pts) > 0 {
				fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="2"%s points="%s"/>`+"\n", color, q.dash, strings.Join(pts, " "))
			}
		}
		ly := plotTop + 10 + i*20
		fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%d" y2="%d" stroke="%s" stroke-width="3"/><text x="%d" y="%d">%s</text>`+"\n",
			plotW-plotRight+12, plotW-plotRight+32, ly, ly, color, plotW-plotRight+38, ly+4, html.EscapeString(r.Label))
	}
	b.WriteString("</svg>\n")
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}
