// The Java resolver of the context benchmark: javac itself (the JDK's compiler API, no other
// library) parses and attributes every source file of a project at once, and prints one JSON
// line per identifier use: where it is, its syntactic context, the declaration javac resolved
// it to (file, name line, header lines, full range) and the lines of the enclosing method (or
// member). Unresolvable names (classes of libraries the project does not ship) are printed
// without a declaration. Run with the JDK's single-file launcher:
//
//   java JavaResolver.java ROOT SOURCE_DIR...   (source dirs relative to ROOT)
//
// Lines and columns are 0-based; columns count UTF-16 code units from the line start (javac's
// character offsets), which for the projects' ASCII sources are characters.

import com.sun.source.tree.*;
import com.sun.source.util.*;
import java.io.*;
import java.nio.charset.StandardCharsets;
import java.nio.file.*;
import java.util.*;
import java.util.stream.*;
import javax.lang.model.element.*;
import javax.tools.*;

public class JavaResolver {
    static Path root;
    static Trees trees;
    static SourcePositions pos;
    static PrintStream out;

    public static void main(String[] args) throws Exception {
        root = Paths.get(args[0]).toRealPath();
        List<Path> files = new ArrayList<>();
        for (int i = 1; i < args.length; i++) {
            try (Stream<Path> s = Files.walk(root.resolve(args[i]))) {
                s.filter(p -> p.toString().endsWith(".java")).sorted().forEach(files::add);
            }
        }
        JavaCompiler compiler = ToolProvider.getSystemJavaCompiler();
        StandardJavaFileManager fm = compiler.getStandardFileManager(null, null, StandardCharsets.UTF_8);
        JavacTask task = (JavacTask) compiler.getTask(null, fm, d -> {},
                List.of("-proc:none", "-Xlint:none", "-implicit:none", "-Xmaxerrs", "100000"), null,
                fm.getJavaFileObjectsFromPaths(files));
        List<CompilationUnitTree> units = new ArrayList<>();
        task.parse().forEach(units::add);
        task.analyze(); // attribution errors (library classes missing) leave those names unresolved
        trees = Trees.instance(task);
        pos = trees.getSourcePositions();
        out = new PrintStream(new FileOutputStream(FileDescriptor.out), false, StandardCharsets.UTF_8);
        for (CompilationUnitTree unit : units) {
            new Sites(unit).scan(unit, null);
        }
        out.flush();
    }

    static String rel(CompilationUnitTree unit) {
        return root.relativize(Paths.get(unit.getSourceFile().toUri()).normalize()).toString();
    }

    static String text(CompilationUnitTree unit) {
        try {
            return unit.getSourceFile().getCharContent(true).toString();
        } catch (IOException e) {
            return "";
        }
    }

    static int line(CompilationUnitTree unit, long p) {
        return (int) unit.getLineMap().getLineNumber(p) - 1;
    }

    static int col(CompilationUnitTree unit, long p) {
        LineMap lm = unit.getLineMap();
        return (int) (p - lm.getStartPosition(lm.getLineNumber(p)));
    }

    /** The offset of `name` as a whole word at or after `from`, or -1. */
    static int word(String src, String name, int from) {
        for (int i = src.indexOf(name, Math.max(0, from)); i >= 0; i = src.indexOf(name, i + 1)) {
            boolean startOk = i == 0 || !Character.isJavaIdentifierPart(src.charAt(i - 1));
            int e = i + name.length();
            boolean endOk = e >= src.length() || !Character.isJavaIdentifierPart(src.charAt(e));
            if (startOk && endOk) return i;
        }
        return -1;
    }

    static String kind(Element e) {
        switch (e.getKind()) {
            case CLASS: return "class";
            case INTERFACE: return "interface";
            case ENUM: return "enum";
            case ANNOTATION_TYPE: return "annotation";
            case METHOD: return "method";
            case CONSTRUCTOR: return "constructor";
            case FIELD: return "field";
            case ENUM_CONSTANT: return "enum constant";
            default: return e.getKind().name().equals("RECORD") ? "record" : null;
        }
    }

    /** The declaration of `e` in the project's sources as JSON, or null. */
    static String declaration(Element e) {
        if (e == null || kind(e) == null) return null;
        TreePath path = trees.getPath(e);
        if (path == null) return null;
        CompilationUnitTree unit = path.getCompilationUnit();
        Tree decl = path.getLeaf();
        String src = text(unit);
        long start = pos.getStartPosition(unit, decl), end = pos.getEndPosition(unit, decl);
        if (start < 0 || end < 0) return null;
        String name = e.getKind() == ElementKind.CONSTRUCTOR
                ? e.getEnclosingElement().getSimpleName().toString() : e.getSimpleName().toString();
        ModifiersTree mods = decl instanceof ClassTree ? ((ClassTree) decl).getModifiers()
                : decl instanceof MethodTree ? ((MethodTree) decl).getModifiers()
                : decl instanceof VariableTree ? ((VariableTree) decl).getModifiers() : null;
        long afterMods = mods == null ? start : Math.max(start, pos.getEndPosition(unit, mods));
        int at = word(src, name, (int) afterMods);
        if (at < 0 || at > end) at = (int) start;
        int headerEnd = line(unit, at);
        if (decl instanceof ClassTree || decl instanceof MethodTree) {
            BlockTree body = decl instanceof MethodTree ? ((MethodTree) decl).getBody() : null;
            long open = body != null ? pos.getStartPosition(unit, body)
                    : decl instanceof ClassTree ? src.indexOf('{', at) : end - 1;
            if (open >= 0 && open <= end) headerEnd = line(unit, open);
        }
        return "{\"path\":" + q(root.resolve(rel(unit)).toString()) + ",\"name\":" + q(name)
                + ",\"kind\":" + q(kind(e)) + ",\"nameLine\":" + line(unit, at) + ",\"nameCol\":"
                + col(unit, at) + ",\"firstLine\":" + line(unit, start) + ",\"headerEnd\":"
                + headerEnd + ",\"startLine\":" + line(unit, start) + ",\"endLine\":"
                + line(unit, Math.max(start, end - 1)) + "}";
    }

    static String q(String s) {
        StringBuilder b = new StringBuilder("\"");
        for (char c : s.toCharArray()) {
            if (c == '"' || c == '\\') b.append('\\').append(c);
            else if (c < 0x20) b.append(String.format("\\u%04x", (int) c));
            else b.append(c);
        }
        return b.append('"').toString();
    }

    /** Every identifier use in one file. */
    static class Sites extends TreePathScanner<Void, Void> {
        final CompilationUnitTree unit;
        final String file;

        Sites(CompilationUnitTree unit) {
            this.unit = unit;
            this.file = rel(unit);
        }

        @Override
        public Void visitIdentifier(IdentifierTree t, Void v) {
            emit(t, t.getName().toString(), pos.getStartPosition(unit, t), false);
            return super.visitIdentifier(t, v);
        }

        @Override
        public Void visitMemberSelect(MemberSelectTree t, Void v) {
            String name = t.getIdentifier().toString();
            long end = pos.getEndPosition(unit, t);
            if (end > 0 && !name.equals("class") && !name.equals("*")) {
                emit(t, name, end - name.length(), true);
            }
            return super.visitMemberSelect(t, v);
        }

        void emit(Tree t, String name, long at, boolean dotted) {
            if (at < 0 || name.equals("this") || name.equals("super")) return;
            TreePath here = getCurrentPath();
            Tree parent = here.getParentPath() == null ? null : here.getParentPath().getLeaf();
            boolean called = parent instanceof MethodInvocationTree
                    && ((MethodInvocationTree) parent).getMethodSelect() == t;
            boolean isNew = false;
            for (TreePath p = here.getParentPath(); p != null; p = p.getParentPath()) {
                Tree leaf = p.getLeaf();
                if (leaf instanceof NewClassTree) {
                    isNew = contains(((NewClassTree) leaf).getIdentifier(), t);
                    break;
                }
                if (!(leaf instanceof MemberSelectTree || leaf instanceof ParameterizedTypeTree)) break;
            }
            Element e = trees.getElement(here);
            if (isNew && e != null && e.getKind() == ElementKind.CONSTRUCTOR) {
                e = e.getEnclosingElement();
            }
            boolean typePos = e != null && (e.getKind().isClass() || e.getKind().isInterface()) && !isNew;
            int[] scope = scope(here);
            String def = declaration(e);
            out.println("{\"file\":" + q(file) + ",\"line\":" + line(unit, at) + ",\"col\":"
                    + col(unit, at) + ",\"name\":" + q(name) + ",\"ctx\":{\"called\":" + called
                    + ",\"isNew\":" + isNew + ",\"typePos\":" + typePos + ",\"dotted\":" + dotted
                    + "},\"scope\":[" + scope[0] + "," + scope[1] + "],\"def\":" + def + "}");
        }

        /** Whether `inner` is the class `new` names (`Foo`, or `Foo` of `Foo<T>`). */
        boolean contains(Tree ident, Tree inner) {
            return ident == inner || (ident instanceof ParameterizedTypeTree
                    && ((ParameterizedTypeTree) ident).getType() == inner);
        }

        /** Lines of the enclosing method, else of the enclosing member of a class. */
        int[] scope(TreePath here) {
            Tree member = null;
            for (TreePath p = here; p != null; p = p.getParentPath()) {
                Tree leaf = p.getLeaf();
                if (leaf instanceof MethodTree) {
                    member = leaf;
                    break;
                }
                TreePath up = p.getParentPath();
                if (member == null && up != null && up.getLeaf() instanceof ClassTree
                        && !(leaf instanceof ClassTree)) {
                    member = leaf;
                }
            }
            if (member == null) return new int[] {0, 0};
            return new int[] {line(unit, pos.getStartPosition(unit, member)),
                    line(unit, Math.max(0, pos.getEndPosition(unit, member) - 1))};
        }
    }
}
