--- :LowEntropyStatus: the index (`lowentropy/indexStatus`) and the backends (`lowentropy/stats`).
local lsp = require('lowentropy.lsp')

local M = {}

local function describe(index, stats)
  local lines = { '# lowentropy', '' }
  if index then
    local state = index.state or '?'
    lines[#lines + 1] = ('index: %s, %d files, %d chunks, %d waiting for embeddings'):format(
      state,
      index.files or 0,
      index.chunks or 0,
      index.pendingEmbeddings or 0
    )
    if index.model and index.model ~= '' then
      lines[#lines + 1] = 'embedder: ' .. index.model
    end
    if index.rootHash and index.rootHash ~= '' then
      lines[#lines + 1] = 'root hash: ' .. index.rootHash:sub(1, 12)
    end
    if index.error and index.error ~= vim.NIL then
      lines[#lines + 1] = 'index error: ' .. tostring(index.error)
    end
  end
  if stats then
    lines[#lines + 1] = ''
    for _, b in ipairs(stats.backends or {}) do
      lines[#lines + 1] = ('%s: %s %s (%s)'):format(b.role, b.kind, b.name, b.template)
    end
    local tab = stats.tab or {}
    lines[#lines + 1] = ('tab: %d requests, %d shown, %d accepted, %d partly accepted'):format(
      tab.requests or 0,
      tab.shown or 0,
      tab.accepted or 0,
      tab.partiallyAccepted or 0
    )
  end
  return lines
end

--- Fetch both and call `done(lines, index, stats)`; errors become lines.
---@param bufnr integer
---@param done fun(lines: string[], index: table?, stats: table?)
function M.fetch(bufnr, done)
  local client = lsp.client(bufnr)
  if not client then
    done({ 'lowentropy is not attached to this buffer' })
    return
  end
  local got, errors = {}, {}
  local remaining = 2
  local function finish()
    remaining = remaining - 1
    if remaining > 0 then
      return
    end
    local lines = describe(got.index, got.stats)
    vim.list_extend(lines, errors)
    done(lines, got.index, got.stats)
  end
  for key, method in pairs({ index = 'lowentropy/indexStatus', stats = 'lowentropy/stats' }) do
    -- An empty Lua table would go out as a JSON array.
    lsp.request(client, method, vim.empty_dict(), function(err, result)
      if err then
        errors[#errors + 1] = ('%s failed: %s'):format(method, err.message)
      else
        got[key] = result
      end
      finish()
    end, bufnr)
  end
end

--- Show the status in a float.
function M.show()
  M.fetch(vim.api.nvim_get_current_buf(), function(lines)
    vim.lsp.util.open_floating_preview(lines, 'markdown', { border = 'rounded', focus_id = 'lowentropy-status' })
  end)
end

return M
