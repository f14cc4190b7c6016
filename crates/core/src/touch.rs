//! Touchpoints: how a visitor arrived (channel, campaign, click id, referrer, landing page).
//!
//! A touchpoint is derived from a `page` event's `context.page` and `context.campaign`
//! (the SDK fills both; third-party clients may send only the URL, so the campaign is
//! parsed from the page's URL when absent). The profile keeps the first and the last.

use serde::{Deserialize, Serialize};

use crate::time::Millis;

/// Where a visit came from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Touchpoint {
    /// When the touch happened.
    pub at: Millis,
    /// `direct`, `organic_search`, `paid_search`, `social`, `paid_social`, `email`,
    /// `referral`, `internal`, ...
    pub channel: String,
    /// `utm_source`, or the referring host's name when there is no campaign.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// `utm_medium`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub medium: Option<String>,
    /// `utm_campaign`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub campaign: Option<String>,
    /// The click id's parameter name (`gclid`, `fbclid`, ...), when one came with the visit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub click_id: Option<String>,
    /// The referring host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub referrer: Option<String>,
    /// The landing page's path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub landing: Option<String>,
}
