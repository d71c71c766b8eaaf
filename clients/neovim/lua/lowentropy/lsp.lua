--- Small helpers around Neovim's LSP client that work on 0.10, 0.11 and 0.12.
local config = require('lowentropy.config')

local M = {}

local has_011 = vim.fn.has('nvim-0.11') == 1

--- A buffer number with nil and 0 resolved to the current buffer.
---@param bufnr? integer
---@return integer
function M.buffer(bufnr)
  if bufnr == nil or bufnr == 0 then
    return vim.api.nvim_get_current_buf()
  end
  return bufnr
end

---@param client vim.lsp.Client
function M.is_ours(client)
  local info = client.server_info
  return client.name == config.get().client_name or (info ~= nil and info.name == 'lowentropy')
end

--- The lowentropy client attached to a buffer, if any.
---@param bufnr integer
---@return vim.lsp.Client?
function M.client(bufnr)
  for _, client in ipairs(vim.lsp.get_clients({ bufnr = bufnr })) do
    if M.is_ours(client) then
      return client
    end
  end
end

---@return boolean ok, integer? request_id
function M.request(client, method, params, handler, bufnr)
  if has_011 then
    return client:request(method, params, handler, bufnr)
  end
  return client.request(method, params, handler, bufnr)
end

function M.notify(client, method, params)
  if has_011 then
    return client:notify(method, params)
  end
  return client.notify(method, params)
end

function M.cancel(client, id)
  if has_011 then
    return client:cancel_request(id)
  end
  return client.cancel_request(id)
end

--- Run a server command (an item's `command`): through workspace/executeCommand.
---@param command lsp.Command
function M.execute(client, command, bufnr)
  local params = { command = command.command, arguments = command.arguments }
  M.request(client, 'workspace/executeCommand', params, function(err)
    if err then
      vim.notify(('lowentropy: %s failed: %s'):format(command.command, err.message), vim.log.levels.WARN)
    end
  end, bufnr)
end

--- `{uri, version}` of a buffer as the server knows it.
---@param bufnr integer
function M.document(bufnr)
  return { uri = vim.uri_from_bufnr(bufnr), version = vim.lsp.util.buf_versions[bufnr] }
end

--- The 0-based byte column of an LSP `character` on `line`.
---@param line string
---@param character integer
---@param encoding string
function M.byte_col(line, character, encoding)
  if encoding == 'utf-8' then
    return math.min(character, #line)
  end
  if has_011 then
    return vim.str_byteindex(line, encoding, character, false)
  end
  local ok, col = pcall(vim.str_byteindex, line, character, encoding == 'utf-16')
  return ok and col or #line
end

--- Length of `text` in the units of `encoding`.
---@param text string
---@param encoding string
function M.length(text, encoding)
  if encoding == 'utf-8' then
    return #text
  end
  if has_011 then
    return vim.str_utfindex(text, encoding)
  end
  local utf32, utf16 = vim.str_utfindex(text)
  return encoding == 'utf-16' and utf16 or utf32
end

--- Byte position {row, col} (0-based) of an LSP position in a loaded buffer.
---@param bufnr integer
---@param position lsp.Position
---@param encoding string
function M.byte_position(bufnr, position, encoding)
  local line = vim.api.nvim_buf_get_lines(bufnr, position.line, position.line + 1, false)[1]
  if line == nil then
    return vim.api.nvim_buf_line_count(bufnr), 0
  end
  return position.line, M.byte_col(line, position.character, encoding)
end

--- An LSP range covering whole lines `line1`..`line2` (1-based, inclusive) of a buffer.
function M.line_range(bufnr, line1, line2, encoding)
  local last = vim.api.nvim_buf_get_lines(bufnr, line2 - 1, line2, false)[1] or ''
  return {
    start = { line = line1 - 1, character = 0 },
    ['end'] = { line = line2 - 1, character = M.length(last, encoding) },
  }
end

return M
