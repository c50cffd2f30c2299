//! Finding artifacts by what people call them (SPEC §14): by workflow and
//! path rather than by id.
//!
//! Every read by path goes through [`Store::artifact_at_path`] (one strongly
//! consistent `GetItem` of the by-path item), as every read by id goes
//! through [`Store::artifact`]: a rule about which artifacts a read may see
//! (the lifecycle's visibility gate) goes into those two functions and
//! nowhere else.

use crate::auth::{Principal, Scope};
use crate::error::{Error, Result};
use crate::metadata::VersionRecord;
use crate::model::{self, Artifact, ArtifactPath};
use crate::store::Store;

impl Store {
    /// The artifact at `path` in `workflow_id` of the caller's org. A bad
    /// workflow id or path is a 400 naming it; another org's artifact is the
    /// plain 404 of a missing one.
    pub async fn artifact_at_path(
        &self,
        principal: &Principal,
        workflow_id: &str,
        path: &str,
    ) -> Result<Artifact> {
        Ok(self
            .artifact_at_path_with_latest(principal, workflow_id, path)
            .await?
            .0)
    }

    /// [`Store::artifact_at_path`], with the item's copy of the latest
    /// version's record if it has a current one.
    async fn artifact_at_path_with_latest(
        &self,
        principal: &Principal,
        workflow_id: &str,
        path: &str,
    ) -> Result<(Artifact, Option<VersionRecord>)> {
        principal.require(Scope::Read)?;
        model::validate_workflow_id(workflow_id)?;
        let path = ArtifactPath::parse(path)?;
        let (artifact, latest) = self
            .metadata
            .artifact_at_with_latest(&principal.org, workflow_id, path.as_str())
            .await?
            .ok_or(Error::NotFound("artifact"))?;
        crate::lifecycle::readable(&artifact, time::OffsetDateTime::now_utc())?;
        Ok((artifact, latest))
    }

    /// The artifact at `path` and one of its versions (default: the
    /// latest), without content: [`Store::version`] by path (the latest
    /// version, when the path item carries its record, is one `GetItem`).
    pub async fn version_at_path(
        &self,
        principal: &Principal,
        workflow_id: &str,
        path: &str,
        version: Option<u64>,
    ) -> Result<(Artifact, VersionRecord)> {
        let (artifact, latest) = self
            .artifact_at_path_with_latest(principal, workflow_id, path)
            .await?;
        self.version_of(&principal.org, artifact, latest, version)
            .await
    }
}
