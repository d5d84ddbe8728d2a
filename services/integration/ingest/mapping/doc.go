// Package mapping turns the CloudEvents a source publishes into the
// platform commands they ask for, one mapping per kind of source: the
// generic JSM vocabulary, ServiceNow table records and Jira Service
// Management webhooks. It is pure: no I/O, no clock; what a ticket already
// became on the platform is the executor's business (package ingest).
//
// # Every mapping
//
// The CloudEvent's subject is the contract id (a UUID); data that names a
// contract itself (contract_id; in ServiceNow records also u_contract_id)
// must name the same one. Data is JSON: datacontenttype is empty,
// application/json or a "+json" type. Map rejects anything else with a
// *RejectError, never mapping it "somehow": a slug (unknown-type,
// malformed-data, invalid-field, missing-contract, contract-mismatch,
// unsupported-record, unsupported-content-type, unknown-mapping) and a
// reason. Requests are not validated here beyond what mapping needs; the
// executor validates the commands it sends. Text from ServiceNow and Jira
// is cut to the platform's field limits.
//
// # JSM (MAPPING_JSM, MAPPING_UNSPECIFIED)
//
// Types and the request their data is, in protojson (proto or lowerCamel
// names; unknown fields are rejected):
//
//	jsm.incident.report         ReportIncidentRequest
//	jsm.incident.update         AssessIncidentRequest + text, occurred_at (AddTimelineEntryRequest)
//	jsm.incident.resolve        ResolveIncidentRequest
//	jsm.vulnerability.register  patching RegisterVulnerabilityRequest
//	jsm.assets.register         patching RegisterAssetsRequest
//	jsm.change.request          changeadvisory RequestChangeRequest
//
// plus external_ref {"system", "id", optionally "url"}, which becomes
// Action.Ref (and, for a report, one of its external_references).
// request_id is ignored; contract_id is the subject's. An update or
// resolve names its incident by incident_id (Action.ObjectID) or by
// external_ref. An update assesses when it gives a severity or a category
// and adds a note when it gives a text; it must do one of them.
//
// # ServiceNow (MAPPING_SERVICENOW)
//
// A business rule or flow posts one record (or the Table API's
// {"result": record}); each field is a string or number, or
// {"value", "display_value"} (sysparm_display_value=all). Stored values are
// read for codes and times (times are ServiceNow's "2006-01-02 15:04:05",
// UTC, or RFC 3339), display values for references (a CI's name). The
// type names the table: servicenow.<table> or com.servicenow.<table>,
// optionally followed by .inserted or .updated (both map alike); the table
// "record" (com.servicenow.record.updated) means the record's
// sys_class_name. Ref is {"servicenow", number} (else sys_id). Tables:
//
// incident → Incident. ReportIncident (short_description, description,
// category, cmdb_ci → affected asset, business_service → affected
// service, opened_at (else sys_created_on) → aware_at, severity from
// priority 1 critical, 2 high, 3 medium, 4 and 5 low, else from
// impact + urgency - 1 as ServiceNow computes priority); Assess with that
// severity and category; Note with the newest entry of comments or
// work_notes; Resolve in state 6 Resolved, 7 Closed or 8 Canceled, with
// close_notes (else "Resolved in ServiceNow: <close_code>").
//
// change_request → Change. RequestChange (short_description; description
// with implementation_plan and justification appended; category
// hardware/network/telecom → hardware, software kinds → software, service
// → service scope, resources, security → security configuration, else
// software; risk 1 Very High and 2 High → high, 3 Moderate → medium, 4 Low
// → low; type emergency; start_date and end_date, both or neither, → the
// planned window; backout_plan → rollback plan; risk_impact_analysis →
// impact). In state 0 Review or 3 Closed, close_code successful or
// successful_issues records a successful implementation, unsuccessful a
// failed one (notes: close_notes); state 3 also closes the change.
//
// sn_vul_vulnerable_item → Remediation. RegisterVulnerability: the CVE is
// the vulnerability's display value, else cve_id or vulnerability.cve (an
// item with no CVE is rejected, unsupported-record); severity from
// risk_rating, else severity ("1 - Critical" .. "4 - Low", "5 - None" low);
// product from software.name, software (display value) or product; the
// affected version from software.version or version; known exploited from
// exploit_exists, vulnerability.exploit_exists or known_exploited;
// cvss_score, cvss_vector; description from summary, description or
// vulnerability.summary.
//
// # Jira Service Management (MAPPING_JIRA)
//
// Types jira:issue_created, jira:issue_updated,
// com.atlassian.jira.issue.created, com.atlassian.jira.issue.updated, or
// com.atlassian.jira.webhook; data is the issue webhook, whose
// webhookEvent (required for com.atlassian.jira.webhook) must be
// jira:issue_created or jira:issue_updated. Ref is {"jira", issue.key}.
// issuetype.name (a "[System] " prefix dropped) Incident, Security
// incident or Major incident → Incident: ReportIncident (summary;
// description as text, from a string or an Atlassian Document Format
// document; priority Highest/Critical/Blocker → critical, High/Major →
// high, Medium → medium, Low/Lowest/Minor/Trivial → low; created →
// aware_at; labels and components → affected services; the browse
// URL from issue.self), Assess with the severity, a Note with the webhook's
// comment, and Resolve, with the resolution's name, once the status
// category is done or a resolution is set. Change, Emergency change,
// Normal change or Standard change → Change: RequestChange (summary,
// description, category software, emergency for Emergency change); once
// done, an implementation (failed for resolutions Failed, Unsuccessful,
// Rolled back, Backed out) and closing, unless the resolution says it did
// not happen (Won't do, Cancelled, Declined, Duplicate, Rejected).
package mapping
