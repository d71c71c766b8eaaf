--- Next edit: `lowentropy/nextEdit` shown in the buffer, accepted or jumped to with a key.
---
--- The result is `{edits: [{textDocument{uri,version}, range, text, command?}], jump?: Location}`.
--- Each edit in this buffer gets its range highlighted and its replacement shown
--- as virtual lines below the range. Accepting applies every edit (only if its
--- document is still at the version the server saw) and runs its `command`.
--- Jumping goes to the edit, or, when the cursor is there already or there is no
--- edit, to `jump` (which may be another file).
local api = vim.api
local config = require('lowentropy.config')
local lsp = require('lowentropy.lsp')

local M = {}

local ns = api.nvim_create_namespace('lowentropy.next_edit')
local uv = vim.uv or vim.loop

---@class lowentropy.NextEditBuffer
---@field timer? uv.uv_timer_t
---@field pending? { client: vim.lsp.Client, id: integer }
---@field client_id? integer
---@field edits? table[] the result's edits
---@field jump? table the result's jump Location

local buffers = {} ---@type table<integer, lowentropy.NextEditBuffer>

local function state(bufnr)
  buffers[bufnr] = buffers[bufnr] or {}
  return buffers[bufnr]
end

function M.namespace()
  return ns
end

--- Remove what is shown and forget the suggestion.
function M.clear(bufnr)
  bufnr = lsp.buffer(bufnr)
  local st = buffers[bufnr]
  if st then
    st.edits, st.jump = nil, nil
  end
  if api.nvim_buf_is_valid(bufnr) then
    api.nvim_buf_clear_namespace(bufnr, ns, 0, -1)
  end
end

--- Whether an edit (or a jump) is on offer in the buffer.
function M.visible(bufnr)
  local st = buffers[lsp.buffer(bufnr)]
  return st ~= nil and ((st.edits ~= nil and #st.edits > 0) or st.jump ~= nil)
end

local function local_edits(bufnr, edits)
  local uri = vim.uri_from_bufnr(bufnr)
  return vim.tbl_filter(function(e)
    return e.textDocument.uri == uri
  end, edits)
end

local function render(bufnr, client, edits)
  api.nvim_buf_clear_namespace(bufnr, ns, 0, -1)
  local opts = config.get().next_edit
  local enc = client.offset_encoding
  for _, e in ipairs(local_edits(bufnr, edits)) do
    local srow, scol = lsp.byte_position(bufnr, e.range.start, enc)
    local erow, ecol = lsp.byte_position(bufnr, e.range['end'], enc)
    local last = math.max(0, api.nvim_buf_line_count(bufnr) - 1)
    local virt_lines = {}
    for _, line in ipairs(vim.split(e.text, '\n', { plain = true, trimempty = false })) do
      local shown = line:gsub('\t', string.rep(' ', vim.bo[bufnr].tabstop))
      virt_lines[#virt_lines + 1] = { { shown, opts.text_hl_group } }
    end
    if e.text == '' then
      virt_lines = {} -- a deletion: the highlighted range is all there is to show
    elseif e.text:sub(-1) == '\n' then
      virt_lines[#virt_lines] = nil -- a trailing newline ends the last line, it adds none
    end
    if srow ~= erow or scol ~= ecol then
      api.nvim_buf_set_extmark(bufnr, ns, srow, scol, {
        end_row = erow,
        end_col = ecol,
        hl_group = opts.range_hl_group,
        strict = false,
      })
    end
    if #virt_lines > 0 then
      -- An edit ending at column 0 ends with the line before it.
      local below = (ecol == 0 and erow > srow) and erow - 1 or erow
      api.nvim_buf_set_extmark(bufnr, ns, math.min(below, last), 0, {
        virt_lines = virt_lines,
        strict = false,
      })
    end
  end
end

--- Ask for the next edit at the cursor.
---@param bufnr? integer
function M.request(bufnr)
  bufnr = lsp.buffer(bufnr)
  if bufnr ~= api.nvim_get_current_buf() then
    return
  end
  local client = lsp.client(bufnr)
  if not client then
    return
  end
  local st = state(bufnr)
  if st.pending then
    pcall(lsp.cancel, st.pending.client, st.pending.id)
  end
  local version = vim.lsp.util.buf_versions[bufnr]
  local params = {
    textDocument = lsp.document(bufnr),
    position = vim.lsp.util.make_position_params(0, client.offset_encoding).position,
  }
  local id
  local ok, request_id = lsp.request(client, 'lowentropy/nextEdit', params, function(err, result)
    if st.pending and st.pending.id == id then
      st.pending = nil
    end
    if err or not result or not api.nvim_buf_is_valid(bufnr) then
      return
    end
    if vim.lsp.util.buf_versions[bufnr] ~= version then
      return -- the buffer moved on
    end
    M.clear(bufnr)
    st.client_id, st.edits, st.jump = client.id, result.edits or {}, result.jump
    render(bufnr, client, st.edits)
  end, bufnr)
  id = request_id
  st.pending = ok and id and { client = client, id = id } or nil
end

local function schedule(bufnr)
  local st = state(bufnr)
  st.timer = st.timer or uv.new_timer()
  st.timer:stop()
  st.timer:start(
    config.get().next_edit.debounce_ms,
    0,
    vim.schedule_wrap(function()
      if api.nvim_buf_is_valid(bufnr) and api.nvim_get_mode().mode:sub(1, 1) == 'n' then
        M.request(bufnr)
      end
    end)
  )
end

--- Apply the shown edits and run their commands. Returns false when there is nothing to accept.
function M.accept(bufnr)
  bufnr = lsp.buffer(bufnr)
  local st = buffers[bufnr]
  local client = st and st.client_id and vim.lsp.get_client_by_id(st.client_id)
  if not (st and st.edits and #st.edits > 0 and client) then
    return false
  end
  local edits, jump = st.edits, st.jump
  M.clear(bufnr)
  local by_buffer = {} ---@type table<integer, table[]>
  for _, e in ipairs(edits) do
    local target = vim.uri_to_bufnr(e.textDocument.uri)
    vim.fn.bufload(target)
    local want = e.textDocument.version
    if want ~= nil and want ~= vim.NIL and vim.lsp.util.buf_versions[target] ~= want then
      vim.notify('lowentropy: the next edit is out of date; nothing applied', vim.log.levels.WARN)
      return false
    end
    by_buffer[target] = by_buffer[target] or {}
    table.insert(by_buffer[target], { range = e.range, newText = e.text })
  end
  for target, text_edits in pairs(by_buffer) do
    vim.lsp.util.apply_text_edits(text_edits, target, client.offset_encoding)
  end
  for _, e in ipairs(edits) do
    if e.command then
      lsp.execute(client, e.command, bufnr)
    end
  end
  st.jump = jump -- the place to go next stays on offer
  return true
end

local function goto_location(client, location)
  if vim.lsp.util.show_document then
    vim.lsp.util.show_document(location, client.offset_encoding, { focus = true })
  else
    vim.lsp.util.jump_to_location(location, client.offset_encoding)
  end
end

--- Move to the shown edit, or to the suggested next place. Returns false when there is neither.
function M.jump(bufnr)
  bufnr = lsp.buffer(bufnr)
  local st = buffers[bufnr]
  local client = st and st.client_id and vim.lsp.get_client_by_id(st.client_id)
  if not (st and client) then
    return false
  end
  local here = local_edits(bufnr, st.edits or {})[1]
  if here then
    local row, col = lsp.byte_position(bufnr, here.range.start, client.offset_encoding)
    local cur = api.nvim_win_get_cursor(0)
    if cur[1] - 1 ~= row then
      api.nvim_win_set_cursor(0, { row + 1, col })
      return true
    end
  end
  local jump = st.jump
  if jump == nil and st.edits and #st.edits > 0 then
    jump = { uri = st.edits[1].textDocument.uri, range = st.edits[1].range }
  end
  if jump == nil then
    return false
  end
  st.jump = nil
  goto_location(client, jump)
  return true
end

function M.dismiss(bufnr)
  bufnr = lsp.buffer(bufnr)
  local shown = M.visible(bufnr)
  M.clear(bufnr)
  return shown
end

---@param bufnr integer
function M.attach(bufnr)
  local group = api.nvim_create_augroup('lowentropy.next_edit.' .. bufnr, { clear = true })
  api.nvim_create_autocmd({ 'InsertEnter', 'BufLeave' }, {
    group = group,
    buffer = bufnr,
    callback = function()
      M.clear(bufnr)
    end,
  })
  if config.get().next_edit.auto then
    api.nvim_create_autocmd({ 'InsertLeave', 'TextChanged' }, {
      group = group,
      buffer = bufnr,
      callback = function()
        -- Shown edits no longer match the text; a pending jump stays until the next answer.
        local st = buffers[bufnr]
        if st then
          st.edits = nil
        end
        api.nvim_buf_clear_namespace(bufnr, ns, 0, -1)
        schedule(bufnr)
      end,
    })
  end
  api.nvim_create_autocmd('BufWipeout', {
    group = group,
    buffer = bufnr,
    callback = function()
      M.detach(bufnr)
    end,
  })
end

---@param bufnr integer
function M.detach(bufnr)
  M.clear(bufnr)
  local st = buffers[bufnr]
  if st and st.timer then
    st.timer:close()
  end
  buffers[bufnr] = nil
  pcall(api.nvim_del_augroup_by_name, 'lowentropy.next_edit.' .. bufnr)
end

return M
