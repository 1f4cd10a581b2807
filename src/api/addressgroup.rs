//! `AddressGroup`: a firewall address group and the address objects behind its members.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::cel;
use super::common::ErrorReport;

/// Longest member address: a range of two IPv6 addresses written in full hex (39 + 1 + 39);
/// only the dotted forms of IPv4-compatible IPv6 ranges are longer, and are refused. Kept tight
/// because the API server's cost estimate of the range rules grows with it.
pub const MEMBER_ADDRESS_MAX_LEN: usize = 79;

/// Refusal: the member is not an address, a network or a range.
pub const MEMBER_FORM_MESSAGE: &str = "must be an IP address (192.0.2.10), a CIDR (10.0.0.0/24) or a range of two addresses (192.0.2.1-192.0.2.9), without spaces";
/// Refusal: a CIDR member with host bits set (FortiOS would store a different network).
pub const MEMBER_HOST_BITS_MESSAGE: &str = "a CIDR must not have host bits set: write the network address, such as 10.0.0.0/24 for 10.0.0.1/24";
/// Refusal: a range with one IPv4 and one IPv6 end.
pub const MEMBER_RANGE_FAMILY_MESSAGE: &str =
    "a range needs two addresses of one IP family (IPv4-IPv4 or IPv6-IPv6)";
/// Refusal: a range whose end is below its start (FortiOS refuses it at write time).
pub const MEMBER_RANGE_ORDER_MESSAGE: &str =
    "a range must not end before it starts: write the lower address first";

/// Names FortiOS reserves for its own address objects; a group of that name cannot be created
/// and must never be written to (`all` is the match-anything address). Compared ignoring case.
pub const BUILTIN_OBJECT_NAMES: [&str; 2] = ["all", "none"];
/// CEL rule: `groupName` is none of [`BUILTIN_OBJECT_NAMES`].
pub const GROUP_NAME_NOT_BUILTIN_RULE: &str = "!(self.lowerAscii() in ['all', 'none'])";
/// Refusal: `groupName` names a built-in object.
pub const GROUP_NAME_BUILTIN_MESSAGE: &str =
    "spec.groupName must not be a FortiOS built-in object name (all, none; in any case)";

/// CEL rule (on the spec): no member admits every address (`0.0.0.0/0`, `::/0`, any `/0`, or a
/// range from the lowest to the highest address of a family, however spelled) unless
/// `allowAnyAddress` is set. `/0` is matched as text: the host-bits rule already refuses any
/// other `/0` network, and Go's prefix parser refuses `/00`. Range ends are bound once each
/// (see `cel`: bound strings keep their size estimate) and compared as IPs, so `::` and
/// `0:0:0:0:0:0:0:0` are one address.
pub const ANY_ADDRESS_RULE: &str = "(has(self.allowAnyAddress) && self.allowAnyAddress) || !has(self.members) || self.members.all(m, !m.address.endsWith('/0') && !(m.address.contains('-') && [m.address.substring(0, m.address.indexOf('-'))].all(a, [m.address.substring(m.address.indexOf('-') + 1)].all(b, isIP(a) && isIP(b) && ((ip(a) == ip('0.0.0.0') && ip(b) == ip('255.255.255.255')) || (ip(a) == ip('::') && ip(b) == ip('ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff')))))))";
/// Refusal: an allow-everything member without the opt-in.
pub const ANY_ADDRESS_MESSAGE: &str = "spec.members must not hold an allow-everything address (0.0.0.0/0, ::/0, or a range over all of IPv4 or IPv6) unless spec.allowAnyAddress is true: such a member opens whatever the group guards to every address";

/// Longest `addressPrefix`: object names are at most 79 characters on FortiOS 6.2+ and
/// FortiManager; 32 leaves 47 for the address, enough for any IPv4 form (a range is at most 31)
/// and common IPv6 ones. Longer names are shortened with a hash suffix (see `reconcile::naming`).
pub const MAX_PREFIX_LEN: usize = 32;

/// Members of one firewall address group, kept converged on a FortiGate or FortiManager ADOM.
#[derive(CustomResource, Debug, Clone, PartialEq, Serialize, Deserialize, KubeSchema)]
#[kube(
    group = "fortisync.dev",
    version = "v1alpha1",
    kind = "AddressGroup",
    namespaced,
    status = "AddressGroupStatus",
    shortname = "fsag",
    category = "fortisync",
    printcolumn = r#"{"name":"GROUP","type":"string","jsonPath":".spec.groupName"}"#,
    printcolumn = r#"{"name":"READY","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"SYNCED","type":"string","jsonPath":".status.conditions[?(@.type==\"Synced\")].status"}"#,
    printcolumn = r#"{"name":"MEMBERS","type":"integer","jsonPath":".status.counts.present"}"#,
    printcolumn = r#"{"name":"TARGET","type":"string","jsonPath":".spec.targetRef.name"}"#,
    printcolumn = r#"{"name":"AGE","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new(ANY_ADDRESS_RULE).message(ANY_ADDRESS_MESSAGE).field_path(".members"))]
pub struct AddressGroupSpec {
    /// The FortiGate or FortiManager (same namespace) that holds the group.
    pub target_ref: TargetRef,
    /// Name of the address group on the device.
    #[x_kube(validation = Rule::new("self.size() >= 1 && self.size() <= 79").message("spec.groupName must be 1-79 characters (the FortiOS name limit)"))]
    #[x_kube(validation = Rule::new("!self.matches('[<>()#\"\\'/]')").message("spec.groupName must not contain < > ( ) # \" ' or / (refused by FortiOS)"))]
    #[x_kube(validation = Rule::new(GROUP_NAME_NOT_BUILTIN_RULE).message(GROUP_NAME_BUILTIN_MESSAGE))]
    #[schemars(length(max = 79))]
    pub group_name: String,
    /// Members; each becomes one address object named `<addressPrefix><address>`.
    #[serde(default)]
    #[schemars(length(max = 2000))]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["address"]))]
    pub members: Vec<Member>,
    /// Prefix of the address objects fortisync owns (like Knocknoc's `kk_`).
    #[serde(default = "default_prefix")]
    #[x_kube(validation = Rule::new("self.matches('^[A-Za-z][A-Za-z0-9_.-]{0,31}$')").message("spec.addressPrefix must start with a letter and be at most 32 characters of letters, digits, '_', '.', '-' (object names are limited to 79 characters)"))]
    #[schemars(length(max = 32))]
    pub address_prefix: String,
    /// `Additive` keeps members an admin added by hand (and reports them); `Exclusive` removes them
    /// from the group (their objects are never deleted).
    #[serde(default)]
    pub membership: Membership,
    /// What happens on the device when this resource is deleted.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
    /// `ObserveOnly` reports drift without writing.
    #[serde(default)]
    pub management_policy: ManagementPolicy,
    /// Take over a group that exists on the device without any fortisync marker (made by
    /// hand): its comment gets this resource's marker and, with `Exclusive`, its members
    /// without a fortisync marker are removed. Without it an `Exclusive` resource refuses such
    /// a group (`GroupNotOwned`). A group another fortisync resource owns is never taken over.
    #[serde(default)]
    pub take_over: bool,
    /// Admit members that match every address: `0.0.0.0/0`, `::/0`, `0.0.0.0-255.255.255.255`
    /// or a range over all of IPv6. Off by default, because one such member (a typo, a
    /// template's placeholder) opens whatever the group guards to the whole Internet; set it
    /// only when that is what the group is for.
    #[serde(default)]
    pub allow_any_address: bool,
}

fn default_prefix() -> String {
    "fs_".to_string()
}

/// Reference to the connection resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TargetRef {
    /// `FortiGate` or `FortiManager`.
    pub kind: TargetKind,
    /// Name of the connection resource in this namespace.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

/// Kinds an `AddressGroup` can target.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
pub enum TargetKind {
    /// A FortiGate over FortiOS REST.
    FortiGate,
    /// A FortiManager ADOM over JSON-RPC.
    FortiManager,
}

/// One member of the group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct Member {
    /// IPv4/IPv6 host (`192.0.2.10`), network (`10.0.0.0/24`, no host bits) or range
    /// (`192.0.2.1-192.0.2.9`, one family, lower end first).
    #[x_kube(validation = Rule::new(cel::member_form_rule()).message(MEMBER_FORM_MESSAGE))]
    #[x_kube(validation = Rule::new(cel::MEMBER_NO_HOST_BITS_RULE).message(MEMBER_HOST_BITS_MESSAGE))]
    #[x_kube(validation = Rule::new(cel::member_range_family_rule()).message(MEMBER_RANGE_FAMILY_MESSAGE))]
    #[x_kube(validation = Rule::new(cel::member_range_order_rule()).message(MEMBER_RANGE_ORDER_MESSAGE))]
    #[schemars(length(max = MEMBER_ADDRESS_MAX_LEN))]
    pub address: String,
    /// When the member stops being desired (RFC 3339); it is removed on time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Time>,
    /// Free text kept in the address object's comment, after the ownership marker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 128))]
    pub comment: Option<String>,
}

/// Membership management.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum Membership {
    /// Keep members fortisync does not own.
    #[default]
    Additive,
    /// The group holds exactly the declared members.
    Exclusive,
}

/// What deleting the resource does on the device.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum DeletionPolicy {
    /// Remove our members and address objects (and the group if we created it and it is empty).
    #[default]
    Delete,
    /// Leave everything on the device.
    Orphan,
}

/// Whether fortisync may write.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ManagementPolicy {
    /// Observe, plan and apply.
    #[default]
    Full,
    /// Observe and report drift only.
    ObserveOnly,
}

/// Observed state of an `AddressGroup`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AddressGroupStatus {
    /// The generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready` and `Synced`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// Member counts.
    #[serde(default)]
    pub counts: MemberCounts,
    /// Members in the group that fortisync does not own (kept in Additive mode).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub foreign_members: Vec<String>,
    /// Out-of-band changes reverted so far.
    #[serde(default)]
    pub drift_repairs: u64,
    /// Last time the device was observed converged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sync_time: Option<Time>,
    /// The nearest future member expiry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_expiry: Option<Time>,
    /// With a FortiManager target and `install: Proxy`: each FortiGate the change must reach.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<DeviceSyncStatus>,
    /// The last failure, with its remedy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<ErrorReport>,
}

/// Whether one FortiGate behind a FortiManager holds the group as the ADOM does.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeviceSyncStatus {
    /// FortiManager device name.
    pub name: String,
    /// The device holds the group and our objects as declared.
    pub synced: bool,
    /// Why not, when it does not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Member counts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MemberCounts {
    /// Members declared and not expired.
    pub desired: u32,
    /// Members in the group on the device (ours and foreign).
    pub present: u32,
    /// Members on the device that fortisync does not own.
    pub foreign: u32,
}
