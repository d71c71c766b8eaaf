;;; eglot_driver.el --- drive eglot against `lowentropy serve' in `emacs --batch'  -*- lexical-binding: t -*-
;;
;; emacs --batch -Q -l eglot_driver.el SNIPPET.el WORKSPACE SKETCH.py OUT.json
;;
;; SNIPPET.el is the setup block of docs/editors/emacs.md (eglot-server-programs and the
;; lowentropy-apply / lowentropy-chat commands), loaded as a user's init file would.
;; WORKSPACE holds shapes.py and rect.py, SKETCH.py the sketch applied to rect.py (see
;; tests/test_emacs.py). Every step records what
;; the editor saw in OUT.json; tests/test_emacs.py asserts on it.

;; Emacs 28: Debian's elpa-eglot, which -Q hides (it skips the site files naming its folder).
(require 'package)
(dolist (dir '("/usr/share/emacs/site-lisp/elpa" "/usr/local/share/emacs/site-lisp/elpa"))
  (when (file-directory-p dir) (add-to-list 'package-directory-list dir)))
(package-initialize)
(require 'eglot)
(require 'json)

(let ((snippet (pop command-line-args-left)))
  (load (expand-file-name snippet) nil t))
(defvar le-root (file-name-as-directory (expand-file-name (pop command-line-args-left))))
(defvar le-sketch (with-temp-buffer
                    (insert-file-contents (expand-file-name (pop command-line-args-left)))
                    (buffer-string)))
(defvar le-out (expand-file-name (pop command-line-args-left)))
(defvar le-results nil)
(setq eglot-sync-connect t
      eglot-connect-timeout 60
      jsonrpc-default-request-timeout 60
      default-directory le-root)

(defun le-record (key value)
  (push (cons key value) le-results)
  (with-temp-file le-out (insert (json-encode le-results))))

(defun le-buffer-text ()
  (buffer-substring-no-properties (point-min) (point-max)))

(defmacro le-step (name &rest body)
  "Run BODY; an error is recorded under NAME-error instead of ending the run."
  (declare (indent 1))
  `(condition-case err
       (progn ,@body)
     (error (le-record (concat ,name "-error") (error-message-string err)))))

;; ---- connect: the documented eglot-server-programs entry, as eglot-ensure would ----------
(find-file (expand-file-name "shapes.py" le-root))
(python-mode)
;; `eglot-ensure' waits for post-command-hook, which batch mode never runs: start it directly.
(apply #'eglot (eglot--guess-contact))
(let ((deadline (+ (float-time) 60)))
  (while (and (not (eglot-current-server)) (< (float-time) deadline))
    (accept-process-output nil 0.1)))
(let ((server (eglot-current-server)))
  (le-record "server" (and server (plist-get (eglot--server-info server) :name)))
  (le-record "contact" (and server (process-command (jsonrpc--process server)))))

;; ---- Tab suggestion as a completion item, accepted with completion-at-point ----------------
(le-step "completion"
  (goto-char (point-min))
  (forward-line 5)
  (end-of-line)
  (le-record "completion-point" (list (1- (line-number-at-pos)) (current-column)))
  (let* ((capf (eglot-completion-at-point))
         (table (nth 2 capf))
         (candidates (all-completions "" table))
         (annotate (plist-get (nthcdr 3 capf) :annotation-function)))
    (le-record "completion-candidates" (vconcat candidates))
    (le-record "completion-annotations"
               (vconcat (mapcar (lambda (c) (string-trim (or (funcall annotate c) "")))
                                candidates))))
  ;; The real command a user runs (C-M-i): with one candidate it inserts it and runs eglot's
  ;; exit function, which replaces the label with the item's textEdit.
  (let ((completion-styles '(basic)))
    (completion-at-point))
  (le-record "completion-buffer" (le-buffer-text)))

;; ---- lowentropy/apply with a sketch, the edit applied by eglot ----------------------------
(le-step "apply"
  (find-file (expand-file-name "rect.py" le-root))
  (unless (eglot-current-server) (eglot--maybe-activate-editing-mode))
  (le-record "apply-managed" (and (eglot-current-server) t))
  (let ((result (lowentropy-apply le-sketch t)))
    (le-record "apply-verified" (plist-get result :verified))
    (le-record "apply-reason" (plist-get result :reason))
    (le-record "apply-diff" (plist-get result :diff)))
  (le-record "apply-buffer" (le-buffer-text)))

;; ---- lowentropy/chat, then the code action that applies the answer's code -----------------
(le-step "chat"
  (let ((content (lowentropy-chat
                  "Rewrite the function perimeter so that it returns 2 * w + 2 * h. Answer with the whole function in one python code block.")))
    (le-record "chat-content" content))
  (let* ((actions (eglot-code-actions (point-min) (point-max)))
         (titles (mapcar (lambda (a) (plist-get a :title)) actions)))
    (le-record "actions" (vconcat titles))
    (le-record "actions-before-apply" (le-buffer-text))
    (let ((apply (seq-find (lambda (a) (string-match-p "Apply the code" (plist-get a :title)))
                           actions)))
      (when apply
        (let ((command (plist-get apply :command)))
          (le-record "action-result"
                     (eglot-execute-command (eglot-current-server)
                                            (intern (plist-get command :command))
                                            (plist-get command :arguments))))
        (le-record "action-buffer" (le-buffer-text))))))

(le-record "done" t)
(ignore-errors (eglot-shutdown (eglot-current-server)))
(kill-emacs 0)
