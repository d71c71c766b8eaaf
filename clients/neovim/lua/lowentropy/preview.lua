--- The diff preview of an apply or edit result: a split to accept or reject it.
---
--- A result is `{edit: WorkspaceEdit, diff, verified, reason?, stats, version}`.
--- An unverified result is never applied: its reason is shown instead. Accepting
--- applies `edit` with the client's position encoding, and only while the target
--- buffer is still at `version`.
local api = vim.api
local config = require('lowentropy.config')
local lsp = require('lowentropy.lsp')

local M = {}

---@class lowentropy.Preview
---@field result table
---@field target integer the buffer the edit is for
---@field client_id integer
---@field win? integer

local previews = {} ---@type table<integer, lowentropy.Preview>

local function close(buf)
  previews[buf] = nil
  if api.nvim_buf_is_valid(buf) then
    for _, win in ipairs(vim.fn.win_findbuf(buf)) do
      if #api.nvim_list_wins() > 1 then
        api.nvim_win_close(win, true)
      end
    end
    if api.nvim_buf_is_valid(buf) then
      api.nvim_buf_delete(buf, { force = true })
    end
  end
end

--- Apply the previewed edit. Returns true when the edit went into the buffer.
---@param buf? integer the preview buffer (default: current)
function M.accept(buf)
  buf = lsp.buffer(buf)
  local p = previews[buf]
  if not p then
    return false
  end
  local client = vim.lsp.get_client_by_id(p.client_id)
  local version = p.result.version
  close(buf)
  if not client or not api.nvim_buf_is_valid(p.target) then
    vim.notify('lowentropy: the document or the server is gone; nothing applied', vim.log.levels.WARN)
    return false
  end
  if version ~= nil and vim.lsp.util.buf_versions[p.target] ~= version then
    vim.notify('lowentropy: the buffer changed since the diff was made; nothing applied', vim.log.levels.WARN)
    return false
  end
  vim.lsp.util.apply_workspace_edit(p.result.edit, client.offset_encoding)
  return true
end

--- Close the preview; the buffer stays as it is.
---@param buf? integer
function M.reject(buf)
  buf = lsp.buffer(buf)
  if not previews[buf] then
    return false
  end
  close(buf)
  return true
end

local counter = 0

--- Show `result` for `target`; returns the preview buffer, or nil when there is nothing to apply.
---@param result table
---@param target integer
---@param client vim.lsp.Client
---@param title string
function M.show(result, target, client, title)
  if not result.verified then
    vim.notify(
      ('lowentropy: %s not applied: %s'):format(title, result.reason or 'it could not be verified'),
      vim.log.levels.WARN
    )
    return nil
  end
  local keys = config.get().preview
  local buf = api.nvim_create_buf(false, true)
  counter = counter + 1
  api.nvim_buf_set_name(buf, ('lowentropy://diff/%d'):format(counter))
  local lines = vim.split(result.diff or '', '\n', { plain = true, trimempty = true })
  api.nvim_buf_set_lines(buf, 0, -1, false, lines)
  vim.bo[buf].modifiable = false
  vim.bo[buf].bufhidden = 'wipe'
  vim.bo[buf].filetype = 'diff'
  previews[buf] = { result = result, target = target, client_id = client.id }
  vim.keymap.set('n', keys.accept, function()
    M.accept(buf)
  end, { buffer = buf, nowait = true, desc = 'lowentropy: apply this diff' })
  vim.keymap.set('n', keys.reject, function()
    M.reject(buf)
  end, { buffer = buf, nowait = true, desc = 'lowentropy: discard this diff' })
  api.nvim_create_autocmd('BufWipeout', {
    buffer = buf,
    once = true,
    callback = function()
      previews[buf] = nil
    end,
  })
  vim.cmd('botright split')
  local win = api.nvim_get_current_win()
  api.nvim_win_set_buf(win, buf)
  vim.wo[win].winbar = ('lowentropy %s: %s accept, %s reject'):format(title, keys.accept, keys.reject)
  return buf
end

--- The open preview buffers (for statuslines and tests).
function M.buffers()
  return vim.tbl_keys(previews)
end

return M
