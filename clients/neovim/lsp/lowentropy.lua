-- The lowentropy language server for Neovim 0.11+'s `vim.lsp.config`.
-- Enable it with `vim.lsp.enable('lowentropy')`; override any field with
-- `vim.lsp.config('lowentropy', { ... })` (e.g. `init_options` for the server's settings).
---@type vim.lsp.Config
return {
  cmd = { 'lowentropy', 'serve' },
  -- No `filetypes`: Tab, next edit and chat are for any text file.
  root_markers = { 'lowentropy.toml', '.git' },
  -- The server's settings (same schema as lowentropy.toml), e.g.
  -- { completion = { warmDelayMs = 400 }, index = { enabled = true } }
  init_options = vim.empty_dict(),
}
