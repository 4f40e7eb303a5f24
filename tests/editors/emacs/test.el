;;; test.el --- Emacs eglot against the real infinity-matrix binary  -*- lexical-binding: t; -*-
;;
;; Run by scripts/editors-e2e.sh in batch mode:
;;   emacs --batch -Q -l tests/editors/emacs/test.el
;; Env: IM_SERVER (binary), IM_LLM_URL (OpenAI-compatible base URL), IM_WORKSPACE (a copy of
;; tests/editors/fixture), IM_RESULTS (file: one "PASS name" / "FAIL name: reason" per check).
;;
;; Batch-mode facts (see docs/editors.md): `eglot-ensure' never connects in batch, so `eglot'
;; is called directly; eglot sends didChange from an idle timer that does not fire in batch,
;; so the test flushes it; server-initiated edits are applied without a y-or-n-p prompt when
;; `eglot-confirm-server-initiated-edits' is nil; window/showMessageRequest is answered by a
;; method defined here (the default one calls `completing-read').

(require 'package)
(package-initialize)
(require 'eglot)
(require 'python)
(require 'cl-lib)

(defvar im-server (or (getenv "IM_SERVER") (error "IM_SERVER not set")))
(defvar im-llm (or (getenv "IM_LLM_URL") (error "IM_LLM_URL not set")))
(defvar im-ws (file-name-as-directory (or (getenv "IM_WORKSPACE") (error "IM_WORKSPACE not set"))))
(defvar im-results (or (getenv "IM_RESULTS") (error "IM_RESULTS not set")))

(defvar im-events nil "infinityMatrix/taskEvent params, newest first.")
(defvar im-asked nil "Messages of window/showMessageRequest answered.")
(defvar im-applied 0 "workspace/applyEdit requests seen.")
(defvar im-messages nil "Messages of window/showMessage, newest first.")
(defvar im-shown nil "URIs of window/showDocument, newest first.")

(setq eglot-confirm-server-initiated-edits nil
      eglot-sync-connect t
      eglot-connect-timeout 30
      eglot-autoshutdown nil
      python-indent-guess-indent-offset nil)

(defun im-report (line)
  (append-to-file (concat line "\n") nil im-results)
  (message "[emacs] %s" line))

(defmacro im-check (name &rest body)
  (declare (indent 1))
  `(condition-case err
       (progn ,@body (im-report (concat "PASS emacs: " ,name)))
     (error (im-report (format "FAIL emacs: %s: %s" ,name (error-message-string err))))))

(defun im-wait (what timeout pred)
  "Process server output until PRED is non-nil, or fail after TIMEOUT seconds."
  (let ((end (+ (float-time) timeout)) v)
    (while (and (not (setq v (funcall pred))) (< (float-time) end))
      (accept-process-output nil 0.05)
      ;; eglot sends didChange from an idle timer, which never fires in batch mode.
      (when (and (eglot-current-server) eglot--recent-changes)
        (eglot--signal-textDocument/didChange)))
    (or v (error "Timed out waiting for %s" what))))

;; The server's notifications --------------------------------------------------------------
(cl-defmethod eglot-handle-notification
  (_server (_method (eql infinityMatrix/taskEvent)) &rest params)
  (push params im-events))

(cl-defmethod eglot-handle-notification
  (_server (_method (eql infinityMatrix/agentStatus)) &rest _params)
  nil)

;; What a stock client shows of an answer: recorded, and shown as eglot does.
(cl-defmethod eglot-handle-notification
  (_server (_method (eql window/showMessage)) &key type message)
  (push message im-messages)
  (message "[eglot] %s" message))

(cl-defmethod eglot-handle-request
  (_server (_method (eql window/showDocument)) &key uri &allow-other-keys)
  (push uri im-shown)
  (list :success t))

;; Answer approvals with "Apply" (the default method would prompt with completing-read).
(cl-defmethod eglot-handle-request
  (_server (_method (eql window/showMessageRequest)) &key _type message actions)
  (push message im-asked)
  (let ((apply (cl-find "Apply" (append actions nil) :key (lambda (a) (plist-get a :title)) :test #'equal)))
    (if apply (list :title "Apply") :null)))

(advice-add 'eglot--apply-workspace-edit :before (lambda (&rest _) (cl-incf im-applied)))

(defun im-task-state (agent state)
  (cl-loop for e in im-events
           for task = (plist-get e :task)
           when (and (equal (plist-get e :type) "state")
                     (equal (plist-get task :agent) agent)
                     (equal (plist-get task :state) state))
           return task))

(defun im-streamed (task-id)
  (mapconcat (lambda (e) (plist-get e :text))
             (cl-remove-if-not (lambda (e) (and (equal (plist-get e :type) "chunk")
                                                (equal (plist-get e :taskId) task-id)))
                               (reverse im-events))
             ""))

(defun im-line-pos (line)
  "Position of the start of 1-based LINE."
  (save-excursion (goto-char (point-min)) (forward-line (1- line)) (point)))

(defun im-run-code-action (title beg end)
  "Run the server's code action TITLE for the region BEG..END through eglot's own path."
  (let ((last-nonmenu-event ?a))      ; not a mouse event: eglot uses completing-read
    (cl-letf (((symbol-function 'completing-read)
               (lambda (_prompt collection &rest _)
                 (or (cl-find title (mapcar (lambda (c) (if (consp c) (car c) c)) collection) :test #'equal)
                     (error "No code action %s in %S" title collection)))))
      (eglot-code-actions beg end nil t))))

;; Start ---------------------------------------------------------------------------------------
(defvar im-buf (find-file-noselect (concat im-ws "calc.py")))
(set-buffer im-buf)
(defvar im-contact
  `(,im-server "lsp"
               :initializationOptions
               (:config
                (:providers (:fake (:kind "openai" :base_url ,im-llm :model "m"))
                 :defaults (:providers ["fake"])
                 :agents (:autoedit
                          (:description "Auto edit"
                           :output "edit"
                           :approval "auto"
                           :triggers ["command" "codeAction"]
                           :prompt "Fix this {{language}} code.\n\n```{{language}}\n{{selection}}\n```\n\nReply with exactly one fenced code block containing the complete replacement for the code shown."))))))

(im-check "initialize: eglot connects and the server declares its capabilities"
  ;; the fixture is no VC repository: a transient project rooted at the workspace
  (eglot '(python-mode) (or (project-current nil im-ws) (cons 'transient im-ws)) 'eglot-lsp-server im-contact "python")
  (im-wait "the connection" 30 (lambda () (eglot-current-server)))
  (let ((server (eglot-current-server)))
    (unless (eglot--server-capable :documentSymbolProvider) (error "no documentSymbolProvider"))
    (unless (eglot--server-capable :codeActionProvider) (error "no codeActionProvider"))
    (unless (= 6 (length (plist-get (eglot--server-capable :executeCommandProvider) :commands)))
      (error "executeCommandProvider: %S" (eglot--server-capable :executeCommandProvider)))
    server))

(im-check "textDocument/documentSymbol lists the functions"
  (let* ((syms (jsonrpc-request (eglot-current-server) :textDocument/documentSymbol
                                `(:textDocument ,(eglot--TextDocumentIdentifier))))
         (names (mapcar (lambda (s) (plist-get s :name)) (append syms nil))))
    (dolist (n '("add" "sub" "scale"))
      (unless (member n names) (error "missing %s in %S" n names)))))

(im-check "a code action runs an agent (Explain) and its answer streams back"
  (im-run-code-action "Explain" (im-line-pos 4) (im-line-pos 7))
  (let* ((task (im-wait "the explain task" 30 (lambda () (im-task-state "explain" "succeeded"))))
         (text (im-streamed (plist-get task :id))))
    (unless (string-match-p "FAKE-ANSWER-END" text) (error "streamed text: %S" text))
    (unless (equal (plist-get task :provider) "fake") (error "provider %S" (plist-get task :provider)))))

(im-check "the Explain answer reaches a stock client (window/showDocument or window/showMessage)"
  (im-wait "the answer through standard LSP" 15
           (lambda ()
             (or (cl-some (lambda (m) (and (string-match-p "answered" m) (string-match-p "FAKE-ANSWER" m)))
                          im-messages)
                 (cl-some (lambda (uri)
                            (let ((file (eglot--uri-to-path uri)))
                              (and (file-exists-p file)
                                   (with-temp-buffer (insert-file-contents file)
                                                     (search-forward "FAKE-ANSWER-END" nil t)))))
                          im-shown)))))

(im-check "an auto agent's edit lands in the buffer through workspace/applyEdit"
  (let ((before im-applied))
    (im-run-code-action "Auto edit" (im-line-pos 9) (im-line-pos 12))
    (im-wait "the auto edit" 30
             (lambda () (with-current-buffer im-buf
                          (save-excursion (goto-char (point-min))
                                          (search-forward "FIXED: validate the inputs of sub" nil t)))))
    (when (= before im-applied) (error "no workspace/applyEdit"))
    (when im-asked (error "an auto edit asked for approval: %S" im-asked))))

(im-check "a manual approval is answered through window/showMessageRequest (Apply)"
  (eglot--signal-textDocument/didChange)
  (eglot-execute-command (eglot-current-server) 'infinity-matrix.startAgent
                         (vector (list :agent "fix"
                                       :textDocument (eglot--TextDocumentIdentifier)
                                       :range (list :start (list :line 3 :character 0)
                                                    :end (list :line 6 :character 0)))))
  (im-wait "the approval question" 30 (lambda () im-asked))
  (unless (string-match-p "proposes an edit" (car im-asked)) (error "message: %S" (car im-asked)))
  (im-wait "the approved edit" 30
           (lambda () (with-current-buffer im-buf
                        (save-excursion (goto-char (point-min))
                                        (search-forward "FIXED: validate the inputs of add" nil t)))))
  (im-wait "the fix task" 10 (lambda () (im-task-state "fix" "succeeded"))))

(im-check "shutdown"
  (eglot-shutdown (eglot-current-server)))

(kill-emacs 0)
