--- Partial results: `$/progress` notifications whose token a request of ours chose.
---
--- `vim.lsp.handlers['$/progress']` also receives work-done progress; it is wrapped
--- once and every token that is not ours goes on to the handler that was there.
local M = {}

local listeners = {} ---@type table<string, fun(value: any)>
local original ---@type function?
local counter = 0

local function handler(err, params, ctx, cfg)
  local listener = params and listeners[params.token]
  if listener then
    listener(params.value)
    return
  end
  if original then
    return original(err, params, ctx, cfg)
  end
end

--- Wrap `vim.lsp.handlers['$/progress']` (once).
function M.install()
  if original == nil and vim.lsp.handlers['$/progress'] ~= handler then
    original = vim.lsp.handlers['$/progress']
    vim.lsp.handlers['$/progress'] = handler
  end
end

--- A token no other request uses.
---@param kind string
function M.token(kind)
  counter = counter + 1
  return ('lowentropy-%s-%d-%d'):format(kind, vim.fn.getpid(), counter)
end

--- Call `fn(value)` for each `$/progress` with `token`; returns the function that stops it.
---@param token string
---@param fn fun(value: any)
---@return fun()
function M.listen(token, fn)
  M.install()
  listeners[token] = fn
  return function()
    listeners[token] = nil
  end
end

return M
