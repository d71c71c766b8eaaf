//! Registers `lowentropy serve` as a Zed language server.
//!
//! The command is `lsp.lowentropy.binary.path` (and `.arguments`) from Zed's settings when
//! set, otherwise `lowentropy` found on the worktree's PATH with `serve`.
//! `lsp.lowentropy.initialization_options` and `lsp.lowentropy.settings` are passed through
//! as `initializationOptions` and `workspace/didChangeConfiguration` settings.

use zed_extension_api::{self as zed, serde_json, settings::LspSettings, LanguageServerId, Result};

const SERVER: &str = "lowentropy";

struct LowEntropyExtension;

impl zed::Extension for LowEntropyExtension {
    fn new() -> Self {
        LowEntropyExtension
    }

    fn language_server_command(
        &mut self,
        language_server_id: &LanguageServerId,
        worktree: &zed::Worktree,
    ) -> Result<zed::Command> {
        let binary = LspSettings::for_worktree(language_server_id.as_ref(), worktree)
            .ok()
            .and_then(|settings| settings.binary);
        let configured = binary.as_ref().and_then(|b| b.path.clone());
        let command = configured.or_else(|| worktree.which(SERVER)).ok_or_else(|| {
            format!(
                "{SERVER} is not on PATH: install it (see the lowentropy README) \
                 or set lsp.{SERVER}.binary.path in Zed's settings"
            )
        })?;
        let args = binary
            .as_ref()
            .and_then(|b| b.arguments.clone())
            .unwrap_or_else(|| vec!["serve".to_string()]);
        let mut env = worktree.shell_env();
        if let Some(extra) = binary.and_then(|b| b.env) {
            env.extend(extra);
        }
        Ok(zed::Command { command, args, env })
    }

    fn language_server_initialization_options(
        &mut self,
        language_server_id: &LanguageServerId,
        worktree: &zed::Worktree,
    ) -> Result<Option<serde_json::Value>> {
        Ok(LspSettings::for_worktree(language_server_id.as_ref(), worktree)
            .ok()
            .and_then(|settings| settings.initialization_options))
    }

    fn language_server_workspace_configuration(
        &mut self,
        language_server_id: &LanguageServerId,
        worktree: &zed::Worktree,
    ) -> Result<Option<serde_json::Value>> {
        Ok(LspSettings::for_worktree(language_server_id.as_ref(), worktree)
            .ok()
            .and_then(|settings| settings.settings)
            .map(|settings| serde_json::json!({ SERVER: settings })))
    }
}

zed::register_extension!(LowEntropyExtension);
