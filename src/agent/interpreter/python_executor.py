# Python executor of the agent's code interpreter (protocol: README.md in this directory).
# The agent runs it as `python3 -u -I -c "<this source>"` with fd 0 = /dev/null, fds 1/2 = the
# user's stdout/stderr pipes, fd 3 = requests (JSON lines in), fd 4 = events (JSON lines out).
# It must work as -c source (no __file__) and use the standard library only; IPython,
# matplotlib and pandas are used when the user's code brings them in, never imported here.
# Start-up imports are only what `python3 -I` has loaded already or what is cheap: _ast rather
# than ast, binascii rather than base64; linecache and traceback come with the first run/error.
import _ast
import _thread
import binascii
import builtins
import io
import json
import os
import signal
import sys
import warnings

REQ_FD = 3
EVT_FD = 4
CO_COROUTINE = 0x0080  # inspect.CO_COROUTINE, without importing inspect
COMPILE_FLAGS = _ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
ModuleType = type(sys)
FORMAT_ORDER = ("png", "jpeg", "svg", "html", "json", "latex", "markdown", "javascript")
MIME_KEYS = {
    "image/png": "png", "image/jpeg": "jpeg", "image/svg+xml": "svg", "text/html": "html",
    "application/json": "json", "text/latex": "latex", "text/markdown": "markdown",
    "application/javascript": "javascript", "text/plain": "text",
}
# An attribute no real object has: an object that answers it has a catch-all __getattr__,
# and its _repr_*_ "methods" are not to be trusted.
CANARY = "_sandbox_executor_canary_no_object_has_this_"
NO_VALUE = object()

_G = globals()  # the executor's namespace: frames running with it are the executor's own


class _State:
    count = 0            # runs so far (execution_count)
    running = False      # a run is in progress: SIGINT raises KeyboardInterrupt
    emitting = 0         # an event is being written: an interrupt waits until it is whole
    interrupt_pending = False
    done_sent = True     # the current run has written its done event
    loop = None          # the asyncio loop for top-level await, made on first use


_emit_lock = _thread.allocate_lock()  # user threads may display() too
_MAIN_THREAD = _thread.get_ident()   # where runs execute and SIGINT is handled

# The user's namespace is a fresh module installed as __main__, so that pickle and
# multiprocessing find the functions and classes the user defines.
_executor_main = sys.modules.get("__main__")  # the executor's own module, kept referenced
_user_module = ModuleType("__main__")
_user_module.__dict__["__builtins__"] = builtins
sys.modules["__main__"] = _user_module
_ns = _user_module.__dict__

# plt.show() under the Agg backend only warns that it cannot show anything: figures left open
# are sent as images at the end of each run instead, so that warning is noise.
warnings.filterwarnings(
    "ignore", message=r".*(non-GUI backend|FigureCanvasAgg is non-interactive)",
    category=UserWarning)

# Children that the user starts must not inherit the protocol pipes (a background process
# holding fd 4 would keep the agent from seeing the executor's end).
for _fd in (REQ_FD, EVT_FD):
    try:
        os.set_inheritable(_fd, False)
    except OSError:
        pass


# ---------------------------------------------------------------------------------------------
# Events

def _flush_std():
    # Everything the user printed must be in the pipes before the event that follows it.
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        try:
            stream.flush()
        except Exception:
            pass


def _write_all(fd, data):
    view = memoryview(data)
    while view:
        try:
            n = os.write(fd, view)
        except BlockingIOError:
            import select
            select.select([], [fd], [])
            continue
        view = view[n:]


def _emit_line(line):
    """Writes one event line on fd 4; an interrupt arriving meanwhile is delivered after it."""
    main = _thread.get_ident() == _MAIN_THREAD
    if main:
        _State.emitting += 1
    try:
        _flush_std()
        data = line.encode("utf-8", "replace") + b"\n"
        try:
            with _emit_lock:
                _write_all(EVT_FD, data)
        except OSError:
            os._exit(0)  # the agent is gone: nobody to report to
    finally:
        if main:
            _State.emitting -= 1
    if main and _State.interrupt_pending and _State.running and not _State.emitting:
        _State.interrupt_pending = False
        raise KeyboardInterrupt


def _emit(event):
    _emit_line(json.dumps(event, ensure_ascii=False, allow_nan=False))


def _emit_result(key, value):
    if key == "json":
        try:
            text = json.dumps(value, ensure_ascii=False, allow_nan=False)
        except (TypeError, ValueError, RecursionError):
            return  # not a JSON value: no such format
        _emit_line('{"type":"result","json":' + text + ',"metadata":{}}')
    else:
        _emit({"type": "result", key: value, "metadata": {}})


def _emit_done():
    _State.done_sent = True
    _emit({"type": "done", "execution_count": _State.count})


def _write_stderr(text):
    _flush_std()
    try:
        _write_all(2, text.encode("utf-8", "backslashreplace"))
    except OSError:
        pass


# ---------------------------------------------------------------------------------------------
# Formatting objects into result events

def _is_class(obj):
    try:
        return isinstance(obj, type)
    except Exception:
        return False


def _has_catch_all(obj):
    try:
        return getattr(obj, CANARY, None) is not None
    except Exception:
        return True


def _is_figure(obj):
    # A matplotlib Figure, recognised without importing matplotlib.
    try:
        return any(c.__name__ == "Figure" and c.__module__.startswith("matplotlib")
                   for c in type(obj).__mro__)
    except Exception:
        return False


def _b64(data):
    return binascii.b2a_base64(data, newline=False).decode("ascii")


def _figure_png(fig):
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    return _b64(buf.getvalue())


def _call_repr(obj, name, *args, **kwargs):
    # Result of obj.<name>(), or None when the method is missing, not callable or fails.
    try:
        method = getattr(obj, name, None)
        if method is None or not callable(method):
            return None
        result = method(*args, **kwargs)
    except Exception:
        return None
    # Rich-repr methods may return (data, metadata).
    if isinstance(result, tuple) and len(result) == 2 and isinstance(result[1], dict):
        result = result[0]
    return result


def _normalise(key, data):
    # The event value of one format, or None when the data does not fit the format.
    if data is None:
        return None
    if key in ("png", "jpeg"):
        if isinstance(data, (bytes, bytearray, memoryview)):
            return _b64(bytes(data))
        return data.strip() if isinstance(data, str) else None
    if key == "json":
        if isinstance(data, (str, bytes)):
            try:
                data = json.loads(data)
            except ValueError:
                return None
        try:
            json.dumps(data, allow_nan=False)
        except (TypeError, ValueError, RecursionError):
            return None
        return data
    if isinstance(data, (bytes, bytearray)):
        return bytes(data).decode("utf-8", "replace")
    return data if isinstance(data, str) else None


def _safe_repr(obj):
    try:
        return repr(obj)
    except Exception as exc:
        return "<repr of %s object failed: %s>" % (type(obj).__name__, _exc_value(exc))


def _format_object(obj):
    """The (format key, value) pairs of obj, in the order they are sent."""
    formats = {}
    if _is_figure(obj):
        try:
            formats["png"] = _figure_png(obj)
        except Exception:
            pass
    elif not _is_class(obj) and not _has_catch_all(obj):
        bundle = _call_repr(obj, "_repr_mimebundle_", include=None, exclude=None)
        if isinstance(bundle, dict):
            for mime, data in bundle.items():
                key = MIME_KEYS.get(mime)
                if key is not None and key not in formats:
                    value = _normalise(key, data)
                    if value is not None:
                        formats[key] = value
        for key in FORMAT_ORDER:
            if key not in formats:
                value = _normalise(key, _call_repr(obj, "_repr_%s_" % key))
                if value is not None:
                    formats[key] = value
    pairs = [(key, formats[key]) for key in FORMAT_ORDER if key in formats]
    if not pairs or "html" in formats:
        text = formats.get("text")
        pairs.append(("text", text if text is not None else _safe_repr(obj)))
    return pairs


def _emit_object(obj):
    for key, value in _format_object(obj):
        _emit_result(key, value)


def _emit_value(value, shown_figures):
    # The value of a run's last expression.
    if value is None:
        return
    if _is_figure(value) and any(value is fig for fig in shown_figures):
        return  # already sent among the open figures
    if type(value) in (dict, list):
        try:
            text = json.dumps(value, ensure_ascii=False, allow_nan=False)
        except (TypeError, ValueError, RecursionError):
            pass
        else:
            _emit_line('{"type":"result","json":' + text + ',"metadata":{}}')
            return
    _emit_object(value)


def display(*objs, include=None, exclude=None, metadata=None, transient=None,
            display_id=None, raw=False, clear=False, **kwargs):
    """Shows each object as result events right away (IPython's display(), for the sandbox)."""
    for obj in objs:
        if raw and isinstance(obj, dict):
            for mime, data in obj.items():
                key = MIME_KEYS.get(mime)
                value = _normalise(key, data) if key else None
                if value is not None:
                    _emit_result(key, value)
        else:
            _emit_object(obj)


def _flush_figures():
    # Sends every figure pyplot still has open as a png, then closes them all.
    plt = sys.modules.get("matplotlib.pyplot")
    if plt is None:
        return ()
    shown = []
    try:
        nums = list(plt.get_fignums())
    except Exception:
        return ()
    try:
        for num in nums:
            fig = plt.figure(num)
            try:
                png = _figure_png(fig)
            except Exception as exc:
                _report_exception(exc)
                continue
            shown.append(fig)
            _emit_result("png", png)
    finally:
        try:
            plt.close("all")
        except Exception:
            pass
    return shown


# ---------------------------------------------------------------------------------------------
# IPython: `from IPython.display import display` must reach ours. IPython is slow to import, so
# it is patched when (if ever) the user's code imports IPython.display.

def _patch_ipython():
    for name in ("IPython.display", "IPython.core.display", "IPython.core.display_functions"):
        module = sys.modules.get(name)
        if module is not None and callable(getattr(module, "display", None)):
            module.display = display
    package = sys.modules.get("IPython")
    if package is not None and getattr(package, "display", None) is not None \
            and not isinstance(package.display, ModuleType):
        package.display = display


class _PatchingLoader:
    def __init__(self, inner):
        self._inner = inner

    def create_module(self, spec):
        create = getattr(self._inner, "create_module", None)
        return create(spec) if create is not None else None

    def exec_module(self, module):
        self._inner.exec_module(module)
        _patch_ipython()

    def __getattr__(self, name):
        return getattr(self._inner, name)


class _IPythonDisplayFinder:
    """Finds IPython.display with the other finders and patches it once it is loaded."""

    def find_spec(self, name, path=None, target=None):
        if name != "IPython.display":
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _PatchingLoader(spec.loader)
                return spec
        return None


builtins.display = display
sys.meta_path.insert(0, _IPythonDisplayFinder())


# ---------------------------------------------------------------------------------------------
# Errors

def _exc_value(exc):
    try:
        return str(exc)
    except Exception:
        return "<exception str() failed>"


def _user_traceback(exc):
    # The traceback without the executor's frames: from the first frame of a cell on (or, when
    # no cell is involved, from the first frame that is not the executor's), minus the
    # executor's frames at the end (its SIGINT handler).
    frames = []
    tb = exc.__traceback__
    while tb is not None:
        frames.append(tb)
        tb = tb.tb_next
    start = next((i for i, t in enumerate(frames)
                  if t.tb_frame.f_code.co_filename.startswith("<cell-")), None)
    if start is None:
        if isinstance(exc, KeyboardInterrupt):
            return []  # interrupted inside the executor or asyncio: nothing of the user's
        start = next((i for i, t in enumerate(frames) if t.tb_frame.f_globals is not _G),
                     len(frames))
    frames = frames[start:]
    while frames and frames[-1].tb_frame.f_globals is _G:
        frames.pop()
    return [(t.tb_frame, t.tb_lineno) for t in frames]


def _report_exception(exc):
    """Error event for an exception of the user's code, and its traceback on stderr."""
    import traceback
    try:
        te = traceback.TracebackException(type(exc), exc, None)
        te.stack = traceback.StackSummary.extract(iter(_user_traceback(exc)))
        text = "".join(te.format())
    except Exception:
        text = "".join(traceback.format_exception_only(type(exc), exc))
    _write_stderr(text)
    _emit({"type": "error", "ename": type(exc).__name__, "evalue": _exc_value(exc),
           "traceback": text.splitlines()})


def _report_compile_error(exc):
    import traceback
    text = "".join(traceback.format_exception_only(type(exc), exc))
    _write_stderr(text)
    _emit({"type": "error", "ename": type(exc).__name__, "evalue": _exc_value(exc),
           "traceback": text.splitlines()})


# ---------------------------------------------------------------------------------------------
# Running code

def _on_sigint(signum, frame):
    # The agent interrupts a run that outlived its timeout; between runs SIGINT is ignored.
    if not _State.running:
        return
    if _State.emitting:
        _State.interrupt_pending = True
        return
    raise KeyboardInterrupt


def _compile(code, filename):
    # (body, last): code objects of the statements and of a final expression (either None).
    tree = compile(code, filename, "exec", _ast.PyCF_ONLY_AST, dont_inherit=True)  # ast.parse
    last = None
    if tree.body and isinstance(tree.body[-1], _ast.Expr):
        expr = tree.body.pop()
        last = compile(_ast.Expression(expr.value), filename, "eval",
                       flags=COMPILE_FLAGS, dont_inherit=True)
    body = None
    if tree.body:
        body = compile(tree, filename, "exec", flags=COMPILE_FLAGS, dont_inherit=True)
    return body, last


def _run_coroutine(coro):
    # Top-level await: the cell's coroutine runs on a loop kept for the executor's lifetime.
    import asyncio
    if _State.loop is None or _State.loop.is_closed():
        _State.loop = asyncio.new_event_loop()
    loop = _State.loop
    task = loop.create_task(coro)
    try:
        return loop.run_until_complete(task)
    except BaseException:
        if not task.done():
            task.cancel()
            try:
                loop.run_until_complete(asyncio.wait({task}, timeout=1.0))
            except BaseException:
                pass
        raise


def _evaluate(code_obj):
    result = eval(code_obj, _ns)
    if code_obj.co_flags & CO_COROUTINE:
        result = _run_coroutine(result)
    return result


def _run(code):
    _State.count += 1
    _State.done_sent = False
    filename = "<cell-%d>" % _State.count
    import linecache  # tracebacks and warnings show the cell's lines from its cache
    linecache.cache[filename] = (len(code), None, code.splitlines(True), filename)
    try:
        signal.signal(signal.SIGINT, _on_sigint)  # the user's code may have replaced it
    except (ValueError, OSError):
        pass
    try:
        body, last = _compile(code, filename)
    except Exception as exc:  # SyntaxError, ValueError (NUL bytes), RecursionError...
        _report_compile_error(exc)
        _emit_done()
        return
    _State.interrupt_pending = False
    try:
        _State.running = True
        value = NO_VALUE
        try:
            if body is not None:
                _evaluate(body)
            value = _evaluate(last) if last is not None else None
        except BaseException as exc:  # SystemExit and KeyboardInterrupt included
            value = NO_VALUE
            _report_exception(exc)
        shown = ()
        try:
            shown = _flush_figures()
        except BaseException as exc:
            _report_exception(exc)
        if value is not NO_VALUE:
            try:
                _emit_value(value, shown)
            except BaseException as exc:
                _report_exception(exc)
    except BaseException as exc:
        # An interrupt that landed in the executor's own steps above.
        try:
            _report_exception(exc)
        except BaseException:
            pass
    finally:
        _State.running = False
    _emit_done()


def _setup(request):
    cwd = request.get("cwd")
    env = request.get("env")
    if isinstance(env, dict):
        for key, value in env.items():
            if value is None:
                os.environ.pop(str(key), None)
            else:
                os.environ[str(key)] = str(value)
    if cwd:
        try:
            os.chdir(cwd)
        except (OSError, TypeError, ValueError) as exc:
            _emit({"type": "error", "ename": "SetupError", "evalue": _exc_value(exc),
                   "traceback": []})
    _emit({"type": "done"})


def _requests():
    # Request lines from fd 3 until EOF. SIGINT while waiting is ignored by the handler and
    # the read resumes (PEP 475).
    buf = bytearray()
    scanned = 0
    while True:
        i = buf.find(b"\n", scanned)
        if i >= 0:
            line = bytes(buf[:i])
            del buf[:i + 1]
            scanned = 0
            if line.strip():
                yield line
            continue
        scanned = len(buf)
        chunk = os.read(REQ_FD, 1 << 20)
        if not chunk:
            if buf.strip():
                yield bytes(buf)
            return
        buf += chunk


def _shutdown():
    # Lets the user's objects finalise (open files flush) and atexit functions run, then exits
    # without waiting for threads the user left running.
    _State.running = False
    try:
        _ns.clear()
        import gc
        gc.collect()
    except BaseException:
        pass
    try:
        import atexit
        atexit._run_exitfuncs()
    except BaseException:
        pass
    _flush_std()
    os._exit(0)


def _protocol_error(message):
    _emit({"type": "error", "ename": "ProtocolError", "evalue": message, "traceback": []})
    _emit({"type": "done"})


def _main():
    try:
        signal.signal(signal.SIGINT, _on_sigint)
    except (ValueError, OSError):
        pass
    # Whole lines: print("hi") becomes one write, so it arrives in one piece; the rest of a
    # line goes out before each event (and so before the run's end), as _flush_std() does.
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.reconfigure(line_buffering=True, write_through=False)
        except (AttributeError, ValueError, OSError):
            pass
    _emit({"type": "ready"})
    for raw in _requests():
        try:
            request = json.loads(raw)
            if not isinstance(request, dict):
                raise ValueError("a request is a JSON object")
        except ValueError as exc:
            _protocol_error("bad request: %s" % exc)
            continue
        op = request.get("op")
        try:
            if op == "run":
                code = request.get("code")
                _run(code if isinstance(code, str) else "")
            elif op == "setup":
                _setup(request)
            elif op == "exit":
                break
            else:
                _protocol_error("unknown op: %r" % (op,))
        except BaseException as exc:
            # Only reached through a bug here or an interrupt at an unlucky instant: the run
            # still ends with its done event.
            _State.running = False
            if op == "run" and not _State.done_sent:
                try:
                    _report_exception(exc)
                except BaseException:
                    pass
                _emit_done()
    _shutdown()


_main()
