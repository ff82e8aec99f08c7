"""Cloud regions to countries: a node's `topology.kubernetes.io/region` label says where the
cluster's workloads run. AWS, Google Cloud and Azure name their regions differently; each table
lists the published regions, and a prefix rule covers the ones added since."""
from __future__ import annotations

_EXACT = {
    # AWS
    "us-east-1": "US", "us-east-2": "US", "us-west-1": "US", "us-west-2": "US", "us-gov-east-1": "US",
    "us-gov-west-1": "US", "ca-central-1": "CA", "ca-west-1": "CA", "mx-central-1": "MX", "sa-east-1": "BR",
    "eu-west-1": "IE", "eu-west-2": "GB", "eu-west-3": "FR", "eu-central-1": "DE", "eu-central-2": "CH",
    "eu-north-1": "SE", "eu-south-1": "IT", "eu-south-2": "ES", "il-central-1": "IL", "me-south-1": "BH",
    "me-central-1": "AE", "af-south-1": "ZA", "ap-east-1": "HK", "ap-east-2": "TW", "ap-south-1": "IN",
    "ap-south-2": "IN", "ap-northeast-1": "JP", "ap-northeast-2": "KR", "ap-northeast-3": "JP",
    "ap-southeast-1": "SG", "ap-southeast-2": "AU", "ap-southeast-3": "ID", "ap-southeast-4": "AU",
    "ap-southeast-5": "MY", "ap-southeast-7": "TH", "cn-north-1": "CN", "cn-northwest-1": "CN",
    # Google Cloud
    "us-central1": "US", "us-east1": "US", "us-east4": "US", "us-east5": "US", "us-south1": "US",
    "us-west1": "US", "us-west2": "US", "us-west3": "US", "us-west4": "US",
    "northamerica-northeast1": "CA", "northamerica-northeast2": "CA", "northamerica-south1": "MX",
    "southamerica-east1": "BR", "southamerica-west1": "CL", "europe-west1": "BE", "europe-west2": "GB",
    "europe-west3": "DE", "europe-west4": "NL", "europe-west6": "CH", "europe-west8": "IT",
    "europe-west9": "FR", "europe-west10": "DE", "europe-west12": "IT", "europe-north1": "FI",
    "europe-north2": "SE", "europe-central2": "PL", "europe-southwest1": "ES", "me-west1": "IL",
    "me-central1": "QA", "me-central2": "SA", "africa-south1": "ZA", "asia-east1": "TW", "asia-east2": "HK",
    "asia-northeast1": "JP", "asia-northeast2": "JP", "asia-northeast3": "KR", "asia-south1": "IN",
    "asia-south2": "IN", "asia-southeast1": "SG", "asia-southeast2": "ID", "australia-southeast1": "AU",
    "australia-southeast2": "AU",
    # Azure
    "westeurope": "NL", "northeurope": "IE", "uksouth": "GB", "ukwest": "GB", "francecentral": "FR",
    "francesouth": "FR", "germanywestcentral": "DE", "germanynorth": "DE", "switzerlandnorth": "CH",
    "switzerlandwest": "CH", "norwayeast": "NO", "norwaywest": "NO", "swedencentral": "SE",
    "polandcentral": "PL", "italynorth": "IT", "spaincentral": "ES", "austriaeast": "AT",
    "belgiumcentral": "BE", "denmarkeast": "DK", "finlandcentral": "FI", "greececentral": "GR",
    "japaneast": "JP", "japanwest": "JP", "koreacentral": "KR", "koreasouth": "KR", "australiaeast": "AU",
    "australiasoutheast": "AU", "australiacentral": "AU", "canadacentral": "CA", "canadaeast": "CA",
    "brazilsouth": "BR", "brazilsoutheast": "BR", "centralindia": "IN", "southindia": "IN", "westindia": "IN",
    "southeastasia": "SG", "eastasia": "HK", "uaenorth": "AE", "uaecentral": "AE",
    "southafricanorth": "ZA", "southafricawest": "ZA", "qatarcentral": "QA", "israelcentral": "IL",
    "mexicocentral": "MX", "newzealandnorth": "NZ", "indonesiacentral": "ID", "malaysiawest": "MY",
    "chilecentral": "CL", "taiwannorth": "TW",
}
# Regions opened after the tables above: the provider's naming says the country or area.
_PREFIXES = (("us-gov", "US"), ("us-", "US"), ("us", "US"), ("ca-", "CA"), ("sa-", "BR"), ("cn-", "CN"),
             ("germany", "DE"), ("france", "FR"), ("uk", "GB"), ("japan", "JP"), ("korea", "KR"),
             ("australia", "AU"), ("canada", "CA"), ("brazil", "BR"), ("switzerland", "CH"),
             ("norway", "NO"), ("sweden", "SE"), ("poland", "PL"), ("italy", "IT"), ("spain", "ES"))


def country_of_region(region: str | None) -> str | None:
    """The country of a cloud region name, or None for a region nobody here knows."""
    if not region:
        return None
    name = region.strip().lower()
    if name in _EXACT:
        return _EXACT[name]
    if name.endswith(("us", "us2", "us3")) and name[:-3 if name[-1].isdigit() else -2] in (
            "east", "west", "central", "northcentral", "southcentral", "westcentral"):
        return "US"  # Azure's eastus, westus3, southcentralus
    return next((country for prefix, country in _PREFIXES if name.startswith(prefix)), None)
