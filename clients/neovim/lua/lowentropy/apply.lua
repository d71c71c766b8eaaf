--- :LowEntropyApply and :LowEntropyEdit: ask the server, then preview the diff.
---
--- The target is the current buffer when lowentropy is attached to it; otherwise
--- (the chat split, a scratch buffer) the last buffer it was attached to that
--- the user was in.
local api = vim.api
local config = require('lowentropy.config')
local lsp = require('lowentropy.lsp')
local preview = require('lowentropy.preview')

local M = {}

local last_target ---@type integer?

--- Remember the last attached buffer the user entered (the target from a chat split).
---@param bufnr integer
function M.entered(bufnr)
  if lsp.client(bufnr) then
    last_target = bufnr
  end
end

local function target()
  local current = api.nvim_get_current_buf()
  if lsp.client(current) then
    return current
  end
  if last_target and api.nvim_buf_is_valid(last_target) and lsp.client(last_target) then
    return last_target
  end
end

local function ask(method, bufnr, params, title)
  local client = assert(lsp.client(bufnr))
  vim.api.nvim_echo({ { ('lowentropy: %s…'):format(title), 'Comment' } }, false, {})
  lsp.request(client, method, params, function(err, result)
    if err then
      vim.notify(('lowentropy: %s failed: %s'):format(title, err.message), vim.log.levels.ERROR)
      return
    end
    vim.api.nvim_echo({ { '' } }, false, {})
    preview.show(result, bufnr, client, title)
  end, bufnr)
end

---@class lowentropy.ApplyOpts
---@field register? string the register holding the sketch
---@field line1? integer with `line2`: a line range of the current buffer
---@field line2? integer

--- Apply a sketch. With a line range in the target buffer the sketch (from a register)
--- is placed within those lines; with a line range in another buffer (the chat split)
--- the selected lines are the sketch.
---@param opts? lowentropy.ApplyOpts
function M.apply(opts)
  opts = opts or {}
  local bufnr = target()
  if not bufnr then
    vim.notify('lowentropy: no buffer with lowentropy attached to apply to', vim.log.levels.WARN)
    return
  end
  local current = api.nvim_get_current_buf()
  local client = assert(lsp.client(bufnr))
  local sketch, range
  if opts.line1 and current ~= bufnr then
    sketch = table.concat(api.nvim_buf_get_lines(current, opts.line1 - 1, opts.line2, false), '\n')
  else
    local register = opts.register and opts.register ~= '' and opts.register or config.get().apply.register
    sketch = vim.fn.getreg(register)
    if opts.line1 then
      range = lsp.line_range(bufnr, opts.line1, opts.line2, client.offset_encoding)
    end
  end
  if sketch:match('^%s*$') then
    vim.notify('lowentropy: the sketch is empty', vim.log.levels.WARN)
    return
  end
  ask('lowentropy/apply', bufnr, {
    textDocument = lsp.document(bufnr),
    sketch = sketch,
    range = range,
  }, 'apply')
end

--- Rewrite lines `line1`..`line2` of the current buffer as `instruction` says.
---@param instruction string
---@param line1 integer
---@param line2 integer
function M.edit(instruction, line1, line2)
  local bufnr = api.nvim_get_current_buf()
  local client = lsp.client(bufnr)
  if not client then
    vim.notify('lowentropy is not attached to this buffer', vim.log.levels.WARN)
    return
  end
  if instruction:match('^%s*$') then
    vim.notify('lowentropy: say what to change', vim.log.levels.WARN)
    return
  end
  ask('lowentropy/editSelection', bufnr, {
    textDocument = lsp.document(bufnr),
    range = lsp.line_range(bufnr, line1, line2, client.offset_encoding),
    instruction = instruction,
  }, 'edit')
end

return M
