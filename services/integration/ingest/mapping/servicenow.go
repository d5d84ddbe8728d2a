package mapping

import (
	"regexp"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	changeadvisoryv1 "github.com/jsmplatform/jsm/proto/gen/jsm/changeadvisory/v1"
	commonv1 "github.com/jsmplatform/jsm/proto/gen/jsm/common/v1"
	incidentsv1 "github.com/jsmplatform/jsm/proto/gen/jsm/incidents/v1"
	patchingv1 "github.com/jsmplatform/jsm/proto/gen/jsm/patching/v1"
)

// SystemServiceNow is the Ref.System of ServiceNow records.
const SystemServiceNow = "servicenow"

// ServiceNow's date-time format, which the Table API and GlideRecord
// values use (always UTC); RFC 3339 is accepted too.
const snTime = "2006-01-02 15:04:05"

// snRecord is a ServiceNow record as posted: each field either a plain
// string (GlideRecord getValue, or the Table API's default) or an object
// {"value": ..., "display_value": ...} (sysparm_display_value=all).
type snRecord map[string]any

// value is the field's stored value.
func (r snRecord) value(k string) string {
	if m, ok := r[k].(map[string]any); ok {
		return strings.TrimSpace(str(m["value"]))
	}
	return strings.TrimSpace(str(r[k]))
}

// display is the field's display value, else its value: a reference's
// display value is the record's name (a CI's name, not its sys_id).
func (r snRecord) display(k string) string {
	if m, ok := r[k].(map[string]any); ok {
		if d := strings.TrimSpace(str(m["display_value"])); d != "" {
			return d
		}
		return strings.TrimSpace(str(m["value"]))
	}
	return strings.TrimSpace(str(r[k]))
}

// code reads a choice field: its number ("6", or the display "1 - Critical"),
// else one of names (lowercase display values, "resolved").
func (r snRecord) code(k string, names map[string]int) (int, bool) {
	for _, s := range []string{r.value(k), r.display(k)} {
		if n, ok := leadingInt(s); ok {
			return n, true
		}
		if n, ok := names[strings.ToLower(s)]; ok {
			return n, true
		}
	}
	return 0, false
}

// first returns the first field of keys with a value (display value, for
// references).
func (r snRecord) first(keys ...string) string {
	for _, k := range keys {
		if v := r.display(k); v != "" {
			return v
		}
	}
	return ""
}

// time reads the first of keys that has a value, as a time.
func (r snRecord) time(keys ...string) (*timestamppb.Timestamp, error) {
	for _, k := range keys {
		t, err := timestamp(k, r.value(k), snTime, time.RFC3339Nano)
		if err != nil || t != nil {
			return t, err
		}
	}
	return nil, nil
}

// leadingInt parses the integer s starts with: "3", "-5", "1 - Critical".
func leadingInt(s string) (int, bool) {
	i := 0
	if strings.HasPrefix(s, "-") {
		i = 1
	}
	j := i
	for j < len(s) && j < i+6 && '0' <= s[j] && s[j] <= '9' {
		j++
	}
	if j == i {
		return 0, false
	}
	n, err := strconv.Atoi(s[:j])
	return n, err == nil
}

// The tables mapped, and how.
var snTables = map[string]func(*Action, snRecord) error{
	"incident":               snIncident,
	"change_request":         snChange,
	"sn_vul_vulnerable_item": snVulnerableItem,
}

func mapServiceNow(typ, contract string, data []byte) (Action, error) {
	m, err := object(data)
	if err != nil {
		return Action{}, err
	}
	// The Table API wraps a record in {"result": {...}}; a flow may post that as is.
	if res, ok := m["result"].(map[string]any); ok && len(m) == 1 {
		m = res
	}
	rec := snRecord(m)
	table, err := snTable(typ, rec)
	if err != nil {
		return Action{}, err
	}
	mapTable, ok := snTables[table]
	if !ok {
		return Action{}, Reject("unsupported-record", "ServiceNow table %q is not mapped", clip(table, 80))
	}
	for _, k := range []string{"contract_id", "u_contract_id"} {
		if err := checkContract(contract, rec.value(k)); err != nil {
			return Action{}, err
		}
	}
	id := rec.value("number")
	if id == "" {
		id = rec.value("sys_id")
	}
	if id == "" {
		return Action{}, Reject("invalid-field", "the %s record has neither number nor sys_id", table)
	}
	a := Action{ContractID: contract, Ref: Ref{System: SystemServiceNow, ID: clip(id, 128)}}
	if err := mapTable(&a, rec); err != nil {
		return Action{}, err
	}
	return a, nil
}

// snTable names the record's table: from the event type,
// servicenow.<table>[.<op>] or com.servicenow.<table>[.<op>] with op
// inserted or updated; the table "record" means: the record's
// sys_class_name says.
func snTable(typ string, rec snRecord) (string, error) {
	rest, ok := strings.CutPrefix(typ, "com.servicenow.")
	if !ok {
		rest, ok = strings.CutPrefix(typ, "servicenow.")
	}
	table, op, hasOp := strings.Cut(rest, ".")
	if !ok || table == "" || hasOp && op != "inserted" && op != "updated" {
		return "", Reject("unknown-type", "event type %q is not servicenow.<table>[.inserted|.updated]", clip(typ, 100))
	}
	if table == "record" {
		table = rec.value("sys_class_name")
		if table == "" {
			return "", Reject("invalid-field", "event type %q needs the record's sys_class_name", clip(typ, 100))
		}
	}
	return table, nil
}

// ServiceNow's choice values: incident and change states, by display name
// for records posted with display values only.
var (
	snIncidentStates = map[string]int{"new": 1, "in progress": 2, "on hold": 3, "resolved": 6, "closed": 7, "canceled": 8, "cancelled": 8}
	snChangeStates   = map[string]int{"new": -5, "assess": -4, "authorize": -3, "scheduled": -2, "implement": -1, "review": 0, "closed": 3, "canceled": 4, "cancelled": 4}
	snLevels         = map[string]int{"high": 1, "medium": 2, "moderate": 2, "low": 3} // impact, urgency
	// A change's close codes (values, and display values for records
	// posted with display values only): whether it was implemented well.
	snCloseCodes = map[string]bool{"successful": true, "successful_issues": true, "successful with issues": true, "unsuccessful": false}
)

// snSeverity reads a 1..5 scale field (priority, risk_rating: "1 - Critical"
// .. "5 - Planning"/"5 - None"), or its display name alone.
func snSeverity(rec snRecord, k string) commonv1.Severity {
	for _, s := range []string{rec.value(k), rec.display(k)} {
		if n, ok := leadingInt(s); ok {
			if sev := snScale(n); sev != 0 {
				return sev
			}
			continue
		}
		if sev := severityName(s); sev != 0 {
			return sev
		}
	}
	return commonv1.Severity_SEVERITY_UNSPECIFIED
}

func snScale(n int) commonv1.Severity {
	switch n {
	case 1:
		return commonv1.Severity_SEVERITY_CRITICAL
	case 2:
		return commonv1.Severity_SEVERITY_HIGH
	case 3:
		return commonv1.Severity_SEVERITY_MEDIUM
	case 4, 5:
		return commonv1.Severity_SEVERITY_LOW
	}
	return commonv1.Severity_SEVERITY_UNSPECIFIED
}

func snIncident(a *Action, rec snRecord) error {
	sev := snSeverity(rec, "priority")
	if sev == 0 {
		// ServiceNow's default priority lookup: impact + urgency - 1.
		i, iok := rec.code("impact", snLevels)
		u, uok := rec.code("urgency", snLevels)
		if iok && uok && 1 <= i && i <= 3 && 1 <= u && u <= 3 {
			sev = snScale(i + u - 1)
		}
	}
	if sev == 0 {
		return Reject("invalid-field", "incident %s: no priority, or impact and urgency", a.Ref.ID)
	}
	awareAt, err := rec.time("opened_at", "sys_created_on")
	if err != nil {
		return err
	}
	if awareAt == nil {
		return Reject("invalid-field", "incident %s: no opened_at", a.Ref.ID)
	}
	category := clip(rec.value("category"), 100)
	a.Object = Incident
	a.ReportIncident = &incidentsv1.ReportIncidentRequest{
		ContractId:         a.ContractID,
		Title:              clip(rec.first("short_description", "number", "sys_id"), maxTitle),
		Severity:           sev,
		AwareAt:            awareAt,
		Description:        clip(rec.value("description"), maxText),
		Category:           category,
		AffectedServices:   nonEmpty(clip(rec.display("business_service"), 200)),
		AffectedAssets:     nonEmpty(clip(rec.display("cmdb_ci"), 200)),
		ExternalReferences: []*incidentsv1.ExternalReference{{System: a.Ref.System, Id: a.Ref.ID}},
	}
	// The current assessment, every time: the executor applies it when it
	// differs from the incident's.
	a.Assess = &incidentsv1.AssessIncidentRequest{Severity: sev, Category: category}
	if text := snLatestJournal(rec); text != "" {
		a.Note = &incidentsv1.AddTimelineEntryRequest{Text: clip(text, maxText)}
	}
	// Resolved (6) and Closed (7) resolve; so does Canceled (8), or the
	// incident would stay open on the platform for good.
	if state, _ := rec.code("state", snIncidentStates); state == 6 || state == 7 || state == 8 {
		summary := rec.value("close_notes")
		if summary == "" {
			summary = "Resolved in ServiceNow"
			if state == 8 {
				summary = "Canceled in ServiceNow"
			}
			if code := rec.display("close_code"); code != "" {
				summary += ": " + code
			}
		}
		a.Resolve = &incidentsv1.ResolveIncidentRequest{Summary: clip(summary, maxSummary)}
	}
	return nil
}

// A journal field's entries, newest first, each under a header
// "2026-11-30 09:12:44 - Fred Luddy (Additional comments)".
var snJournalHeader = regexp.MustCompile(`(?m)^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) - .* \((?:Additional comments|Work notes)\)\r?$`)

// snLatestJournal returns the newest comment or work note: a journal field
// posted in full (a display value, getJournalEntry(-1)) gives its first
// entry, header included (it says who and when); a field without headers
// is the text just added (current.comments in a business rule), which is
// newer than any entry with a header. Header times are in the posting
// user's time zone, so they are kept as text, and occurred_at is left to
// the executor.
func snLatestJournal(rec snRecord) string {
	var best, bestAt string
	for _, k := range []string{"comments", "work_notes"} {
		s := strings.TrimSpace(rec.display(k))
		if s == "" {
			continue
		}
		at := "9999" // no header: just added
		if loc := snJournalHeader.FindAllStringSubmatchIndex(s, 2); len(loc) > 0 && loc[0][0] == 0 {
			at = s[loc[0][2]:loc[0][3]]
			if len(loc) > 1 {
				s = strings.TrimSpace(s[:loc[1][0]])
			}
		}
		if best == "" || at > bestAt {
			best, bestAt = s, at
		}
	}
	return best
}

func snChange(a *Action, rec snRecord) error {
	start, err := rec.time("start_date")
	if err != nil {
		return err
	}
	end, err := rec.time("end_date")
	if err != nil {
		return err
	}
	if start == nil || end == nil {
		// The planned window is both or neither.
		start, end = nil, nil
	}
	desc := rec.value("description")
	for _, p := range []struct{ label, field string }{{"Implementation plan", "implementation_plan"}, {"Justification", "justification"}} {
		if v := rec.value(p.field); v != "" {
			desc = strings.TrimSpace(desc + "\n\n" + p.label + ":\n" + v)
		}
	}
	a.Object = Change
	a.RequestChange = &changeadvisoryv1.RequestChangeRequest{
		ContractId:   a.ContractID,
		Title:        clip(rec.first("short_description", "number", "sys_id"), maxTitle),
		Category:     snChangeCategory(rec),
		Description:  clip(desc, maxText),
		Risk:         snRisk(rec),
		Impact:       clip(rec.value("risk_impact_analysis"), maxSummary),
		PlannedStart: start,
		PlannedEnd:   end,
		RollbackPlan: clip(rec.value("backout_plan"), maxText),
		Emergency:    strings.EqualFold(rec.value("type"), "emergency") || strings.EqualFold(rec.display("type"), "emergency"),
	}
	state, ok := rec.code("state", snChangeStates)
	if !ok || state != 0 && state != 3 {
		return nil
	}
	// Review (0) or Closed (3): implemented; the close code says how well.
	if success, ok := snCloseCodes[strings.ToLower(rec.value("close_code"))]; ok {
		a.Implementation = &changeadvisoryv1.RecordImplementationRequest{Success: success, Notes: clip(rec.value("close_notes"), maxText)}
	}
	if state == 3 {
		a.CloseChange = &changeadvisoryv1.CloseChangeRequest{}
	}
	return nil
}

// snChangeCategory maps change_request.category (ServiceNow's default
// choices, or the platform's own names) to a ChangeCategory; software is
// the default, being what most changes are.
func snChangeCategory(rec snRecord) commonv1.ChangeCategory {
	for _, s := range []string{rec.value("category"), rec.display("category")} {
		s = strings.ToLower(strings.NewReplacer("_", " ", "-", " ").Replace(s))
		switch strings.TrimPrefix(s, "change category ") {
		case "hardware", "network", "telecom":
			return commonv1.ChangeCategory_CHANGE_CATEGORY_HARDWARE
		case "software", "system software", "applications software", "application software":
			return commonv1.ChangeCategory_CHANGE_CATEGORY_SOFTWARE
		case "service", "service scope":
			return commonv1.ChangeCategory_CHANGE_CATEGORY_SERVICE_SCOPE
		case "resources":
			return commonv1.ChangeCategory_CHANGE_CATEGORY_RESOURCES
		case "security", "security configuration":
			return commonv1.ChangeCategory_CHANGE_CATEGORY_SECURITY_CONFIGURATION
		}
	}
	return commonv1.ChangeCategory_CHANGE_CATEGORY_SOFTWARE
}

// snRisk maps change_request.risk (1 Very High, 2 High, 3 Moderate, 4 Low);
// anything else is unspecified, which the platform reads as low.
func snRisk(rec snRecord) changeadvisoryv1.Risk {
	n, _ := rec.code("risk", map[string]int{"very high": 1, "high": 2, "moderate": 3, "medium": 3, "low": 4})
	switch n {
	case 1, 2:
		return changeadvisoryv1.Risk_RISK_HIGH
	case 3:
		return changeadvisoryv1.Risk_RISK_MEDIUM
	case 4:
		return changeadvisoryv1.Risk_RISK_LOW
	}
	return changeadvisoryv1.Risk_RISK_UNSPECIFIED
}

var cvePattern = regexp.MustCompile(`^CVE-[0-9]{4}-[0-9]{4,}$`)

func snVulnerableItem(a *Action, rec snRecord) error {
	// The vulnerability reference's display value is the entry's id,
	// a CVE for NVD entries; a scanner's own entry (a QID) may name it.
	cve := ""
	for _, s := range []string{rec.display("vulnerability"), rec.display("cve_id"), rec.display("vulnerability.cve")} {
		if s = strings.ToUpper(s); cvePattern.MatchString(s) {
			cve = s
			break
		}
	}
	if cve == "" {
		return Reject("unsupported-record", "vulnerable item %s names no CVE", a.Ref.ID)
	}
	sev := snSeverity(rec, "risk_rating")
	if sev == 0 {
		sev = snSeverity(rec, "severity")
	}
	if sev == 0 {
		return Reject("invalid-field", "vulnerable item %s: no risk_rating or severity", a.Ref.ID)
	}
	product := rec.first("software.name", "software", "product")
	version := rec.first("software.version", "version")
	if product == "" || version == "" {
		return Reject("invalid-field", "vulnerable item %s: no software.name/software/product or software.version/version", a.Ref.ID)
	}
	r := &patchingv1.RegisterVulnerabilityRequest{
		ContractId:       a.ContractID,
		CveId:            cve,
		Severity:         sev,
		Product:          clip(product, 200),
		AffectedVersions: []string{clip(version, 200)},
		CvssVector:       clip(rec.value("cvss_vector"), 200),
		Description:      clip(rec.first("summary", "description", "vulnerability.summary"), maxText),
	}
	for _, k := range []string{"exploit_exists", "vulnerability.exploit_exists", "known_exploited"} {
		switch strings.ToLower(rec.value(k)) {
		case "true", "1", "yes":
			r.KnownExploited = true
		}
	}
	if s := rec.value("cvss_score"); s != "" {
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || !(0 <= f && f <= 10) {
			return Reject("invalid-field", "vulnerable item %s: cvss_score %q is not a score 0..10", a.Ref.ID, clip(s, 32))
		}
		r.CvssScore = f
	}
	a.Object, a.RegisterVulnerability = Remediation, r
	return nil
}

func nonEmpty(s ...string) []string {
	var out []string
	for _, x := range s {
		if x != "" {
			out = append(out, x)
		}
	}
	return out
}
