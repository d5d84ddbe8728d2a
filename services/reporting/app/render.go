package app

import (
	"bytes"
	"fmt"
	"html/template"
	"strings"
	"time"

	"codeberg.org/go-pdf/fpdf"
	"google.golang.org/protobuf/types/known/durationpb"

	commonv1 "github.com/jsmplatform/jsm/proto/gen/jsm/common/v1"
	reportingv1 "github.com/jsmplatform/jsm/proto/gen/jsm/reporting/v1"
	"github.com/jsmplatform/jsm/services/reporting/domain"
)

// Row is one line of a report's KPI table.
type Row struct{ Area, Name, Value string }

// Bar is one bar of a report's chart.
type Bar struct {
	Label string
	Value int32
}

func dur(d *durationpb.Duration) string {
	if d == nil {
		return "-"
	}
	return d.AsDuration().Round(time.Minute).String()
}

func sevName(s commonv1.Severity) string {
	return strings.ToLower(strings.TrimPrefix(s.String(), "SEVERITY_"))
}

// Rows are the report's KPIs as a table.
func Rows(k *reportingv1.Kpis) []Row {
	i, p, c, a := k.GetIncidents(), k.GetPatching(), k.GetChanges(), k.GetAudits()
	rows := []Row{
		{"Contract", "Title", k.GetContract().GetTitle()},
		{"Contract", "Phase", k.GetContract().GetPhase()},
		{"Contract", "In force", fmt.Sprint(k.GetContract().GetInForce())},
		{"Incidents", "Reported", fmt.Sprint(i.GetReported())},
	}
	for _, s := range i.GetReportedBySeverity() {
		rows = append(rows, Row{"Incidents", "Reported, " + sevName(s.GetSeverity()), fmt.Sprint(s.GetCount())})
	}
	rows = append(rows,
		Row{"Incidents", "Notification deadlines met", fmt.Sprintf("%d of %d (%.2f %%)", i.GetNotificationClocksMet(), i.GetNotificationClocksDue(), i.GetNotificationDeadlinesMetPercent())},
		Row{"Incidents", "Mean time to notify", dur(i.GetMeanTimeToNotify())},
		Row{"Incidents", "Resolved", fmt.Sprint(i.GetResolved())},
		Row{"Incidents", "Mean time to resolve", dur(i.GetMeanTimeToResolve())},
		Row{"Patching", "Due-date compliance", fmt.Sprintf("%d of %d (%.2f %%)", p.GetPatchedOnTime(), p.GetDue(), p.GetDueDateCompliancePercent())},
	)
	for _, s := range p.GetMedianTimeToPatch() {
		rows = append(rows, Row{"Patching", "Median time to patch, " + sevName(s.GetSeverity()), fmt.Sprintf("%s (%d)", dur(s.GetDuration()), s.GetCount())})
	}
	rows = append(rows,
		Row{"Patching", "Open remediations", fmt.Sprint(p.GetOpen())},
		Row{"Patching", "Overdue remediations", fmt.Sprint(p.GetOverdue())},
		Row{"Changes", "Requested", fmt.Sprint(c.GetRequested())},
		Row{"Changes", "Approved", fmt.Sprint(c.GetApproved())},
		Row{"Changes", "Rejected", fmt.Sprint(c.GetRejected())},
		Row{"Changes", "Emergency", fmt.Sprint(c.GetEmergency())},
		Row{"Changes", "Failed", fmt.Sprint(c.GetFailed())},
		Row{"Audits", "Open findings", fmt.Sprint(a.GetOpenFindings())},
	)
	for _, s := range a.GetOpenFindingsBySeverity() {
		rows = append(rows, Row{"Audits", "Open findings, " + sevName(s.GetSeverity()), fmt.Sprint(s.GetCount())})
	}
	return append(rows, Row{"Audits", "Overdue measures", fmt.Sprint(a.GetOverdueMeasures())})
}

// Bars is the report's chart: incidents by severity.
func Bars(k *reportingv1.Kpis) []Bar {
	counts := map[commonv1.Severity]int32{}
	for _, s := range k.GetIncidents().GetReportedBySeverity() {
		counts[s.GetSeverity()] = s.GetCount()
	}
	var out []Bar
	for _, s := range []commonv1.Severity{commonv1.Severity_SEVERITY_CRITICAL, commonv1.Severity_SEVERITY_HIGH, commonv1.Severity_SEVERITY_MEDIUM, commonv1.Severity_SEVERITY_LOW} {
		out = append(out, Bar{Label: sevName(s), Value: counts[s]})
	}
	return out
}

type view struct {
	R     domain.Report
	Start string
	End   string
	Rows  []Row
	Bars  []Bar
	Max   int32
}

func viewOf(r domain.Report) (view, error) {
	k, err := r.KpisOf()
	if err != nil {
		return view{}, err
	}
	v := view{R: r, Start: r.PeriodStart.Format(time.DateOnly), End: r.PeriodEnd.Format(time.DateOnly), Rows: Rows(k), Bars: Bars(k), Max: 1}
	for _, b := range v.Bars {
		v.Max = max(v.Max, b.Value)
	}
	return v, nil
}

var page = template.Must(template.New("report").Funcs(template.FuncMap{
	"width":  func(v, m int32) int32 { return v * 300 / m },
	"y":      func(i int) int { return i * 16 },
	"height": func(n int) int { return n * 16 },
	"plus":   func(a, b int32) int32 { return a + b },
}).Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Security report {{.R.ContractID}} {{.Start}} – {{.End}}</title></head>
<body>
<h1>Security report</h1>
<p>Contract {{.R.ContractID}} ({{.R.Customer}} / {{.R.Provider}}), period {{.Start}} to {{.End}} (end exclusive, UTC).</p>
<p>Report {{.R.ID}}, content hash <code>{{.R.ContentHash}}</code>.</p>
<table border="1"><thead><tr><th>Area</th><th>KPI</th><th>Value</th></tr></thead><tbody>
{{range .Rows}}<tr><td>{{.Area}}</td><td>{{.Name}}</td><td>{{.Value}}</td></tr>
{{end}}</tbody></table>
<h2>Incidents by severity</h2>
<svg width="420" height="{{height (len .Bars)}}" role="img">{{$m := .Max}}{{range $i, $b := .Bars}}
<text x="0" y="{{y $i}}" dy="10" font-size="10">{{$b.Label}}</text><rect x="60" y="{{y $i}}" width="{{width $b.Value $m}}" height="12" fill="#285aa0"/><text x="{{plus (width $b.Value $m) 64}}" y="{{y $i}}" dy="10" font-size="10">{{$b.Value}}</text>{{end}}
</svg>
</body></html>
`))

// RenderHTML renders the report as an HTML page.
func RenderHTML(r domain.Report) ([]byte, error) {
	v, err := viewOf(r)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	if err := page.Execute(&b, v); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// RenderPDF renders the report as a PDF: a KPI table and a bar chart of
// the incidents by severity drawn with rectangles. The document's dates
// are the report's, so the same report renders to the same bytes.
func RenderPDF(r domain.Report) ([]byte, error) {
	v, err := viewOf(r)
	if err != nil {
		return nil, err
	}
	pdf := fpdf.New("P", "mm", "A4", "")
	pdf.SetCreationDate(r.GeneratedAt)
	pdf.SetModificationDate(r.GeneratedAt)
	pdf.SetTitle("Security report "+r.ContractID, true)
	tr := pdf.UnicodeTranslatorFromDescriptor("")
	pdf.AddPage()
	pdf.SetFont("Helvetica", "B", 16)
	pdf.Cell(0, 10, "Security report")
	pdf.Ln(10)
	pdf.SetFont("Helvetica", "", 9)
	pdf.MultiCell(0, 5, tr(fmt.Sprintf("Contract %s (%s / %s), period %s to %s (end exclusive, UTC). Report %s, content hash %s.",
		r.ContractID, r.Customer, r.Provider, v.Start, v.End, r.ID, r.ContentHash)), "", "L", false)
	pdf.Ln(3)
	pdf.SetFont("Helvetica", "B", 10)
	for i, h := range []string{"Area", "KPI", "Value"} {
		pdf.CellFormat([]float64{30, 90, 60}[i], 7, h, "1", 0, "L", false, 0, "")
	}
	pdf.Ln(-1)
	pdf.SetFont("Helvetica", "", 9)
	for _, row := range v.Rows {
		pdf.CellFormat(30, 6, tr(row.Area), "1", 0, "L", false, 0, "")
		pdf.CellFormat(90, 6, tr(row.Name), "1", 0, "L", false, 0, "")
		pdf.CellFormat(60, 6, tr(row.Value), "1", 0, "L", false, 0, "")
		pdf.Ln(-1)
	}
	pdf.Ln(6)
	pdf.SetFont("Helvetica", "B", 11)
	pdf.Cell(0, 8, "Incidents by severity")
	pdf.Ln(10)
	pdf.SetFont("Helvetica", "", 9)
	pdf.SetFillColor(40, 90, 160)
	x0, y := 40.0, pdf.GetY()
	for _, b := range v.Bars {
		pdf.Text(15, y+5, b.Label)
		w := 120 * float64(b.Value) / float64(v.Max)
		if w > 0 {
			pdf.Rect(x0, y, w, 7, "F")
		}
		pdf.Text(x0+w+2, y+5, fmt.Sprint(b.Value))
		y += 10
	}
	var out bytes.Buffer
	if err := pdf.Output(&out); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}
