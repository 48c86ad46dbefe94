//go:build e2e

package main

import (
	"fmt"
	"os"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// soakSeries is one curve of the soak: its samples as (minutes, value).
type soakSeries struct {
	title, unit string
	xy          plotter.XYs
}

// plotSoak draws the soak's curves, one panel each, in a PNG at path,
// for docs/reliability.md. The dashed line marks the end of the load.
func plotSoak(path string, series []soakSeries, loadEnd float64) error {
	const cols = 3
	rows := (len(series) + cols - 1) / cols
	grid := make([][]*plot.Plot, rows)
	for i, s := range series {
		p := plot.New()
		p.Title.Text = s.title
		p.X.Label.Text = "minutes"
		p.Y.Label.Text = s.unit
		line, err := plotter.NewLine(s.xy)
		if err != nil {
			return fmt.Errorf("%s: %w", s.title, err)
		}
		p.Add(line, plotter.NewGrid())
		if loadEnd > 0 {
			_, _, ymin, ymax := plotter.XYRange(s.xy)
			end, err := plotter.NewLine(plotter.XYs{{X: loadEnd, Y: ymin}, {X: loadEnd, Y: ymax}})
			if err == nil {
				end.Dashes = []vg.Length{vg.Points(4), vg.Points(4)}
				p.Add(end)
			}
		}
		grid[i/cols] = append(grid[i/cols], p)
	}
	for len(grid[rows-1]) < cols {
		grid[rows-1] = append(grid[rows-1], nil)
	}
	img := vgimg.New(vg.Points(float64(cols)*300), vg.Points(float64(rows)*220))
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: rows, Cols: cols, PadX: vg.Points(12), PadY: vg.Points(12), PadTop: vg.Points(6), PadBottom: vg.Points(6), PadLeft: vg.Points(6), PadRight: vg.Points(6)}
	canvases := plot.Align(grid, tiles, dc)
	for r := range grid {
		for c, p := range grid[r] {
			if p != nil {
				p.Draw(canvases[r][c])
			}
		}
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
