package mapping

import (
	"strings"
	"time"

	changeadvisoryv1 "github.com/jsmplatform/jsm/proto/gen/jsm/changeadvisory/v1"
	commonv1 "github.com/jsmplatform/jsm/proto/gen/jsm/common/v1"
	incidentsv1 "github.com/jsmplatform/jsm/proto/gen/jsm/incidents/v1"
)

// SystemJira is the Ref.System of Jira issues.
const SystemJira = "jira"

// The CloudEvent types of Jira issue webhooks; TypeJiraWebhook leaves it
// to data's webhookEvent.
const (
	TypeJiraWebhook = "com.atlassian.jira.webhook"
)

var jiraTypes = map[string]bool{
	"jira:issue_created":               true,
	"jira:issue_updated":               true,
	"com.atlassian.jira.issue.created": true,
	"com.atlassian.jira.issue.updated": true,
	TypeJiraWebhook:                    true,
}

// Jira's time format, "2026-11-30T08:12:44.123+0100" (the fraction is
// optional when parsing).
const jiraTime = "2006-01-02T15:04:05-0700"

func mapJira(typ, contract string, data []byte) (Action, error) {
	if !jiraTypes[typ] {
		return Action{}, Reject("unknown-type", "event type %q is not a Jira issue created/updated webhook", clip(typ, 100))
	}
	m, err := object(data)
	if err != nil {
		return Action{}, err
	}
	// Jira's own webhookEvent says what happened, whatever the sender
	// made the CloudEvent's type; created and updated map alike (the
	// executor creates what its ref does not name yet).
	if ev, ok := m["webhookEvent"]; ok || typ == TypeJiraWebhook {
		if s := str(ev); s != "jira:issue_created" && s != "jira:issue_updated" {
			return Action{}, Reject("unknown-type", "webhookEvent %q is not jira:issue_created or jira:issue_updated", clip(s, 100))
		}
	}
	if err := checkContract(contract, str(m["contract_id"])); err != nil {
		return Action{}, err
	}
	issue := at(m, "issue")
	key := strings.TrimSpace(str(at(issue, "key")))
	if key == "" {
		return Action{}, Reject("invalid-field", "the webhook has no issue.key")
	}
	fields, ok := at(issue, "fields").(map[string]any)
	if !ok {
		return Action{}, Reject("invalid-field", "issue %s has no fields", clip(key, 128))
	}
	a := Action{ContractID: contract, Ref: Ref{System: SystemJira, ID: clip(key, 128)}}
	j := jiraIssue{key: a.Ref.ID, fields: fields, url: jiraBrowseURL(str(at(issue, "self")), key)}
	switch t := jiraIssueType(str(at(fields, "issuetype", "name"))); t {
	case "incident", "security incident", "major incident":
		err = j.incident(&a, at(m, "comment"))
	case "change", "emergency change", "normal change", "standard change":
		j.change(&a, t == "emergency change")
	default:
		err = Reject("unsupported-record", "issue %s: issue type %q is not mapped", a.Ref.ID, clip(t, 100))
	}
	if err != nil {
		return Action{}, err
	}
	return a, nil
}

// jiraIssueType normalizes an issue type's name; Jira Service Management
// templates name theirs "[System] Incident".
func jiraIssueType(name string) string {
	name = strings.ToLower(strings.TrimSpace(name))
	return strings.TrimSpace(strings.TrimPrefix(name, "[system]"))
}

type jiraIssue struct {
	key    string
	fields map[string]any
	url    string
}

func (j jiraIssue) field(keys ...string) string {
	return strings.TrimSpace(str(at(j.fields, keys...)))
}

func (j jiraIssue) title() string {
	if s := j.field("summary"); s != "" {
		return clip(s, maxTitle)
	}
	return j.key
}

// done reports whether the issue is resolved: in a done status, or
// with a resolution. name is the resolution's name.
func (j jiraIssue) done() (name string, done bool) {
	name = j.field("resolution", "name")
	return name, name != "" || j.field("status", "statusCategory", "key") == "done"
}

func (j jiraIssue) incident(a *Action, comment any) error {
	prio := j.field("priority", "name")
	sev := severityName(prio)
	if sev == commonv1.Severity_SEVERITY_UNSPECIFIED {
		return Reject("invalid-field", "issue %s: priority %q is not mapped", j.key, clip(prio, 64))
	}
	awareAt, err := timestamp("created", j.field("created"), jiraTime, time.RFC3339Nano)
	if err != nil {
		return err
	}
	if awareAt == nil {
		return Reject("invalid-field", "issue %s has no created time", j.key)
	}
	// Labels and components both name what the incident affects.
	var services []string
	seen := map[string]bool{}
	add := func(s string) {
		s = clip(strings.TrimSpace(s), 200)
		if s != "" && !seen[s] && len(services) < 100 {
			seen[s] = true
			services = append(services, s)
		}
	}
	labels, _ := j.fields["labels"].([]any)
	for _, l := range labels {
		add(str(l))
	}
	components, _ := j.fields["components"].([]any)
	for _, c := range components {
		add(str(at(c, "name")))
	}
	a.Object = Incident
	a.ReportIncident = &incidentsv1.ReportIncidentRequest{
		ContractId:         a.ContractID,
		Title:              j.title(),
		Severity:           sev,
		AwareAt:            awareAt,
		Description:        clip(jiraText(j.fields["description"]), maxText),
		AffectedServices:   services,
		ExternalReferences: []*incidentsv1.ExternalReference{{System: SystemJira, Id: j.key, Url: j.url}},
	}
	a.Assess = &incidentsv1.AssessIncidentRequest{Severity: sev}
	// An issue_commented update carries the new comment.
	if body := jiraText(at(comment, "body")); body != "" {
		if who := strings.TrimSpace(str(at(comment, "author", "displayName"))); who != "" {
			body = who + ": " + body
		}
		// A comment's time in another format is no reason to drop it.
		occurred, _ := timestamp("comment.created", str(at(comment, "created")), jiraTime, time.RFC3339Nano)
		a.Note = &incidentsv1.AddTimelineEntryRequest{Text: clip(body, maxText), OccurredAt: occurred}
	}
	if name, done := j.done(); done {
		summary := name
		if summary == "" {
			summary = strings.TrimSpace("Resolved in Jira: " + j.field("status", "name"))
			summary = strings.TrimSuffix(summary, ":")
		}
		a.Resolve = &incidentsv1.ResolveIncidentRequest{Summary: clip(summary, maxSummary)}
	}
	return nil
}

// Resolutions of a done change that say it was not implemented at all, or
// failed.
var (
	jiraNotDone = map[string]bool{"won't do": true, "won't fix": true, "cancelled": true, "canceled": true, "declined": true, "duplicate": true, "rejected": true}
	jiraFailed  = map[string]bool{"failed": true, "unsuccessful": true, "rolled back": true, "backed out": true}
)

// change maps a change issue. Jira has no standard fields for a change's
// category, risk or window (Jira Service Management keeps them in custom
// fields), so the category is the default, software.
func (j jiraIssue) change(a *Action, emergency bool) {
	a.Object = Change
	a.RequestChange = &changeadvisoryv1.RequestChangeRequest{
		ContractId:  a.ContractID,
		Title:       j.title(),
		Category:    commonv1.ChangeCategory_CHANGE_CATEGORY_SOFTWARE,
		Description: clip(jiraText(j.fields["description"]), maxText),
		Emergency:   emergency,
	}
	name, done := j.done()
	if !done || jiraNotDone[strings.ToLower(name)] {
		return
	}
	a.Implementation = &changeadvisoryv1.RecordImplementationRequest{Success: !jiraFailed[strings.ToLower(name)], Notes: name}
	a.CloseChange = &changeadvisoryv1.CloseChangeRequest{}
}

// jiraBrowseURL derives the issue's web address from its REST address
// ("https://acme.atlassian.net/rest/api/2/issue/10042").
func jiraBrowseURL(self, key string) string {
	i := strings.Index(self, "/rest/api/")
	if i <= 0 || !strings.HasPrefix(self, "https://") && !strings.HasPrefix(self, "http://") || strings.ContainsAny(key, "/?# ") {
		return ""
	}
	return self[:i] + "/browse/" + key
}

// jiraText returns a text field's text: a string (REST API v2, wiki
// markup) as is, an Atlassian Document Format document (v3) as its plain
// text, one line per paragraph.
func jiraText(v any) string {
	if s, ok := v.(string); ok {
		return strings.TrimSpace(s)
	}
	var b strings.Builder
	adfText(&b, v)
	return strings.TrimSpace(b.String())
}

// ADF nodes that end a line.
var adfBlocks = map[string]bool{"paragraph": true, "heading": true, "codeBlock": true, "blockquote": true, "rule": true}

func adfText(b *strings.Builder, v any) {
	n, ok := v.(map[string]any)
	if !ok {
		return
	}
	typ := str(n["type"])
	switch typ {
	case "text":
		b.WriteString(str(n["text"]))
	case "hardBreak":
		b.WriteString("\n")
	case "mention", "emoji", "status", "date":
		b.WriteString(str(at(n, "attrs", "text")))
	case "inlineCard", "blockCard", "embedCard":
		b.WriteString(str(at(n, "attrs", "url")))
	case "listItem":
		b.WriteString("- ")
	}
	content, _ := n["content"].([]any)
	for _, c := range content {
		adfText(b, c)
	}
	if adfBlocks[typ] && !strings.HasSuffix(b.String(), "\n") {
		b.WriteString("\n")
	}
}
