"""Beyond one machine: session sync to S3-compatible storage, SkyPilot jobs, Kubernetes manifests."""
