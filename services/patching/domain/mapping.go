package domain

import (
	"maps"
	"slices"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	patchingv1 "github.com/jsmplatform/jsm/proto/gen/jsm/patching/v1"
)

// ToProto maps a remediation to its API message; withAssets false leaves
// the affected assets out (lists).
func ToProto(r Remediation, withAssets bool) *patchingv1.Remediation {
	m := &patchingv1.Remediation{
		RemediationId: r.ID, ContractId: r.ContractID, Status: r.Status(), DueAt: ts(r.DueAt), Overdue: r.Overdue,
		CveId: r.CVE, Severity: r.Severity, CvssScore: r.CVSS, CvssVector: r.Vector, KnownExploited: r.KnownExploited,
		Product: r.Product, AffectedVersions: slices.Clone(r.AffectedVersions), Description: r.Description,
		RegisteredAt: ts(r.RegisteredAt), UpdatedAt: ts(r.UpdatedAt), Position: r.Position,
		CustomerOrgId: string(r.Customer), ProviderOrgId: string(r.Provider), OverdueAssetIds: slices.Clone(r.OverdueAssets),
	}
	if withAssets {
		for _, id := range slices.Sorted(maps.Keys(r.Assets)) {
			f := r.Assets[id]
			m.Assets = append(m.Assets, &patchingv1.AffectedAsset{
				AssetId: id, Status: f.Status, ChangeId: f.Change, BackupReference: f.Backup, AppliedAt: ts(f.AppliedAt), VerifiedAt: ts(f.VerifiedAt),
			})
		}
	}
	for _, x := range r.Releases {
		m.Releases = append(m.Releases, &patchingv1.Release{
			Kind: x.Kind, Reference: x.Reference, Description: x.Description, TestSummary: x.TestSummary, Emergency: x.Emergency, ReleasedAt: ts(x.ReleasedAt),
		})
	}
	for _, c := range r.Changes {
		m.Changes = append(m.Changes, &patchingv1.LinkedChange{ChangeId: c.ID, Emergency: c.Emergency, State: c.State, AssetIds: slices.Clone(c.Assets)})
	}
	for _, d := range r.Deferrals {
		m.Deferrals = append(m.Deferrals, &patchingv1.Deferral{DeferralId: d.ID, Reason: d.Reason, Risk: d.Risk, Until: ts(d.Until), State: d.State, Comment: d.Comment})
	}
	return m
}

// ts leaves zero times unset.
func ts(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}
