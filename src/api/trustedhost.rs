//! `TrustedHost`: one administrator's trusted-host slot, opened for a declared address and
//! closed on time (Knocknoc's "Active — FortiManager (Trusted Hosts)", seed 003), on a
//! FortiManager admin (`/cli/global/system/admin/user/{user}` `trusthostN`/`ipv6_trusthostN`)
//! or a FortiGate administrator (`system/admin` `trusthostN`/`ip6-trusthostN`) or REST API user
//! (`system/api-user` `trusthost` table, entry id = slot).
//!
//! Admission refuses what can never be safe: an allow-all address, slot 1 (the break-glass
//! slot) without `allowSlotOne`, a grant with no address. The rest (masking slots, the
//! controller's own user, foreign values, two resources on one slot) needs the device and is
//! refused by the reconciler before any write.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::addressgroup::{DeletionPolicy, TargetRef};
use super::common::ErrorReport;

/// The highest slot (FortiOS and FortiManager both have ten).
pub const MAX_SLOT: u8 = 10;

/// CEL rule (spec): slot 1 only with the opt-in.
pub const SLOT_ONE_RULE: &str =
    "!has(self.slot) || self.slot != 1 || (has(self.allowSlotOne) && self.allowSlotOne)";
/// Refusal: slot 1 without the opt-in.
pub const SLOT_ONE_MESSAGE: &str = "spec.slot 1 is the break-glass slot (FortiManager's only default 'any' slot): set spec.allowSlotOne: true to manage it, or use slots 2-10";
/// CEL rule (spec): something to grant.
pub const ADDRESS_REQUIRED_RULE: &str = "has(self.address) || has(self.ipv6Address)";
/// Refusal: no address.
pub const ADDRESS_REQUIRED_MESSAGE: &str =
    "spec.address or spec.ipv6Address is required: the address the slot opens for";
/// CEL rule (spec): `ApiUser` exists on FortiGate only.
pub const API_USER_RULE: &str =
    "!has(self.userKind) || self.userKind != 'ApiUser' || self.targetRef.kind == 'FortiGate'";
/// Refusal: `ApiUser` on a FortiManager.
pub const API_USER_MESSAGE: &str = "spec.userKind ApiUser is for FortiGate targets: FortiManager API users are administrators (userKind Admin)";
/// CEL rule (spec): an api-user `trusthost` entry has one type, so one family per slot.
pub const API_USER_ONE_FAMILY_RULE: &str = "!has(self.userKind) || self.userKind != 'ApiUser' || !(has(self.address) && has(self.ipv6Address))";
/// Refusal: both families for an API user.
pub const API_USER_ONE_FAMILY_MESSAGE: &str = "spec.userKind ApiUser: a FortiGate api-user trusthost entry holds one family, so set spec.address or spec.ipv6Address, not both (use two slots)";
/// CEL rule (address): an IPv4 host or network.
pub const ADDRESS_FORM_RULE: &str =
    "(isIP(self) && ip(self).family() == 4) || (isCIDR(self) && cidr(self).ip().family() == 4)";
/// Refusal: not IPv4.
pub const ADDRESS_FORM_MESSAGE: &str =
    "spec.address must be an IPv4 host (192.0.2.10) or network (192.0.2.0/24)";
/// CEL rule (ipv6Address): an IPv6 host or network.
pub const IPV6_FORM_RULE: &str =
    "(isIP(self) && ip(self).family() == 6) || (isCIDR(self) && cidr(self).ip().family() == 6)";
/// Refusal: not IPv6.
pub const IPV6_FORM_MESSAGE: &str =
    "spec.ipv6Address must be an IPv6 host (2001:db8::10) or network (2001:db8::/64)";
/// CEL rule (either address): a network has no host bits set.
pub const NO_HOST_BITS_RULE: &str = "!isCIDR(self) || cidr(self) == cidr(self).masked()";
/// Refusal: host bits set.
pub const NO_HOST_BITS_MESSAGE: &str =
    "the network has host bits set: write it as its network address (10.0.0.0/8, not 10.0.0.1/8)";
/// CEL rule (either address): not allow-all and not an unspecified address.
pub const NOT_ANY_RULE: &str = "!(isCIDR(self) && cidr(self).prefixLength() == 0) && !(isIP(self) && (ip(self) == ip('0.0.0.0') || ip(self) == ip('::')))";
/// Refusal: allow-all.
pub const NOT_ANY_MESSAGE: &str = "0.0.0.0/0, ::/0 and the unspecified address allow every source: a trusted host must name the addresses it opens for";
/// CEL rule (address): not FortiManager's "unused" value.
pub const NOT_UNUSED_RULE: &str = "self != '255.255.255.255' && self != '255.255.255.255/32'";
/// Refusal: the unused value.
pub const NOT_UNUSED_MESSAGE: &str =
    "255.255.255.255 is the device's 'unused slot' value, not an address to open for";

/// One trusted-host slot of one administrator.
#[derive(CustomResource, Debug, Clone, PartialEq, Serialize, Deserialize, KubeSchema)]
#[kube(
    group = "fortisync.dev",
    version = "v1alpha1",
    kind = "TrustedHost",
    namespaced,
    status = "TrustedHostStatus",
    shortname = "fsth",
    category = "fortisync",
    printcolumn = r#"{"name":"USER","type":"string","jsonPath":".spec.user"}"#,
    printcolumn = r#"{"name":"SLOT","type":"integer","jsonPath":".spec.slot"}"#,
    printcolumn = r#"{"name":"ADDRESS","type":"string","jsonPath":".status.slot.address"}"#,
    printcolumn = r#"{"name":"READY","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"UNTIL","type":"date","jsonPath":".status.openUntil"}"#,
    printcolumn = r#"{"name":"AGE","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new(SLOT_ONE_RULE).message(SLOT_ONE_MESSAGE).field_path(".slot"))]
#[x_kube(validation = Rule::new(ADDRESS_REQUIRED_RULE).message(ADDRESS_REQUIRED_MESSAGE))]
#[x_kube(validation = Rule::new(API_USER_RULE).message(API_USER_MESSAGE).field_path(".userKind"))]
#[x_kube(validation = Rule::new(API_USER_ONE_FAMILY_RULE).message(API_USER_ONE_FAMILY_MESSAGE).field_path(".userKind"))]
pub struct TrustedHostSpec {
    /// The FortiGate or FortiManager (same namespace) whose administrator this is.
    pub target_ref: TargetRef,
    /// The administrator's name, exactly as the device spells it (FortiManager `userid`,
    /// FortiOS `name`).
    #[x_kube(validation = Rule::new("self.size() >= 1 && self.size() <= 64").message("spec.user must be 1-64 characters (the FortiOS admin name limit)"))]
    #[x_kube(validation = Rule::new("!self.matches('[<>()#\"\\'/ ]')").message("spec.user must not contain spaces or < > ( ) # \" ' /"))]
    #[schemars(length(max = 64))]
    pub user: String,
    /// `Admin` (FortiManager admin user, FortiGate `system/admin`) or `ApiUser` (FortiGate
    /// `system/api-user`, whose `trusthost` table holds entry id = slot).
    #[serde(default)]
    pub user_kind: UserKind,
    /// The slot (1-10). Slot 1 needs `allowSlotOne`: it is the slot an administrator keeps for
    /// break-glass access.
    #[serde(default = "default_slot")]
    #[schemars(range(min = 1, max = 10))]
    pub slot: u8,
    /// Allow managing slot 1.
    #[serde(default)]
    pub allow_slot_one: bool,
    /// IPv4 host or network the slot opens for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new(ADDRESS_FORM_RULE).message(ADDRESS_FORM_MESSAGE))]
    #[x_kube(validation = Rule::new(NO_HOST_BITS_RULE).message(NO_HOST_BITS_MESSAGE))]
    #[x_kube(validation = Rule::new(NOT_ANY_RULE).message(NOT_ANY_MESSAGE))]
    #[x_kube(validation = Rule::new(NOT_UNUSED_RULE).message(NOT_UNUSED_MESSAGE))]
    #[schemars(length(max = 18))]
    pub address: Option<String>,
    /// IPv6 host or network the slot opens for (the slot's IPv6 half).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new(IPV6_FORM_RULE).message(IPV6_FORM_MESSAGE))]
    #[x_kube(validation = Rule::new(NO_HOST_BITS_RULE).message(NO_HOST_BITS_MESSAGE))]
    #[x_kube(validation = Rule::new(NOT_ANY_RULE).message(NOT_ANY_MESSAGE))]
    #[schemars(length(max = 43))]
    pub ipv6_address: Option<String>,
    /// The grant's end: at this instant the slot is closed (written back to the device's
    /// unused value). Unset: open until the resource changes or goes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Time>,
    /// What deleting the resource does: `Delete` closes the slot, `Orphan` leaves it open.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
    /// Overwrite a slot that holds a value fortisync did not write (by default it is reported
    /// as foreign and left alone).
    #[serde(default)]
    pub take_over: bool,
}

fn default_slot() -> u8 {
    MAX_SLOT
}

/// Which table the user lives in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum UserKind {
    /// A password administrator (FortiManager: every admin user, API ones included).
    #[default]
    Admin,
    /// A FortiGate REST API user (`system/api-user`).
    ApiUser,
}

/// Observed state of a `TrustedHost`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TrustedHostStatus {
    /// The generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready` and `Synced`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// What the slot holds on the device now, as last read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slot: Option<SlotValue>,
    /// What fortisync last wrote into a slot, and where: how it knows the slot is its own (the
    /// device holds no marker). A device value equal to this is ours; any other value is
    /// someone else's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub written: Option<WrittenSlot>,
    /// Until when the slot is open (the grant's `expiresAt`), while it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open_until: Option<Time>,
    /// Other slots of the user that let every source in, masking this one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub masked_by: Vec<u8>,
    /// Out-of-band changes to the slot repaired so far.
    #[serde(default)]
    pub drift_repairs: u64,
    /// The last failure, with its remedy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<ErrorReport>,
}

/// A slot's value in canonical form (`a.b.c.d/len`, `prefix/len`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SlotValue {
    /// IPv4 half (`unused` when the slot holds the device's unused value).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// IPv6 half.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv6_address: Option<String>,
}

/// The value fortisync wrote, and the slot it wrote it to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WrittenSlot {
    /// The connection (`FortiGate/<name>` or `FortiManager/<name>`).
    pub target: String,
    /// The user.
    pub user: String,
    /// Its kind.
    pub user_kind: UserKind,
    /// The slot.
    pub slot: u8,
    /// The value written (canonical; None = that half was left unused).
    pub value: SlotValue,
}
