package ember.jvm;

import java.lang.reflect.Method;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

import org.apache.spark.sql.catalyst.InternalRow;
import org.apache.spark.sql.catalyst.expressions.Expression;
import org.apache.spark.sql.catalyst.expressions.Literal;
import org.apache.spark.sql.catalyst.expressions.UnsafeArrayData;
import org.apache.spark.sql.catalyst.expressions.codegen.CodegenContext;
import org.apache.spark.sql.catalyst.expressions.codegen.CodegenFallback;
import org.apache.spark.sql.catalyst.expressions.codegen.ExprCode;
import org.apache.spark.sql.catalyst.util.ArrayData;
import org.apache.spark.sql.types.ArrayType;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.UserDefinedType;
import org.apache.spark.unsafe.Platform;

import scala.runtime.AbstractFunction1;

/**
 * Feature rows packed on the JVM into one binary value of little-endian float32s, so that a row crosses
 * to Python as one Arrow binary value (one copy) and Python reads a whole batch with one
 * {@code np.frombuffer}, instead of an Arrow list that Spark's writer fills one element at a time.
 *
 * <p>{@code register(session, name)} adds the SQL function {@code name(features, 'column name')} to a
 * (classic) session: its argument is an {@code array<float>}, an {@code array<double>} or an MLlib vector
 * (dense or sparse; sparse rows get their zeros written); the column name only goes into error messages.
 * A null row gives null (Python counts the null rows and names the column); a null value inside an array,
 * or a sparse index outside its vector, raises an {@code IllegalArgumentException} naming the column, the
 * index and the row's size. An {@code array<float>} row in Spark's own layout ({@code UnsafeArrayData})
 * is one memory copy.
 */
public final class FeaturePacking {
    private static final boolean LITTLE = ByteOrder.nativeOrder() == ByteOrder.LITTLE_ENDIAN;

    private FeaturePacking() {
    }

    /** Register the packing function as {@code name} in {@code session}'s function registry (Spark 3.5 and 4.x:
     * found by reflection, since the session's and the registry's classes differ between them). */
    public static void register(Object session, String name) throws ReflectiveOperationException {
        Object state = session.getClass().getMethod("sessionState").invoke(session);
        Object registry = state.getClass().getMethod("functionRegistry").invoke(state);
        Method register = null;
        for (Method m : registry.getClass().getMethods()) {
            Class<?>[] p = m.getParameterTypes();
            if (m.getName().equals("createOrReplaceTempFunction") && p.length == 3 && p[0] == String.class
                    && p[2] == String.class) {
                register = m;
            }
        }
        if (register == null) {
            throw new NoSuchMethodException("createOrReplaceTempFunction(name, builder, source) on "
                + registry.getClass().getName());
        }
        selfCheck();
        register.invoke(registry, name, new Builder(), "scala_udf");
    }

    /** Pack one literal row through the tree API that Spark calls (children, withNewChildren, eval): a Spark
     * this class does not link against fails here, at registration, and Python keeps its own route. */
    static void selfCheck() {
        Expression row = Literal.create(new org.apache.spark.sql.catalyst.util.GenericArrayData(
            new Object[] {1.5f, -2.0f}), DataTypes.createArrayType(DataTypes.FloatType));
        Expression pack = new Pack(row, "check");
        pack = pack.withNewChildren(pack.children());
        byte[] out = (byte[]) pack.eval(null);
        ByteBuffer read = ByteBuffer.wrap(out).order(ByteOrder.LITTLE_ENDIAN);
        if (out.length != 8 || read.getFloat(0) != 1.5f || read.getFloat(4) != -2.0f) {
            throw new IllegalStateException("ember's feature packing does not work in this Spark");
        }
    }

    static IllegalArgumentException nullValue(String column, int index, int size) {
        return new IllegalArgumentException("column '" + column + "' holds null values inside its arrays (the first "
            + "at index " + index + " of a row of " + size + " values); drop or fill them first");
    }

    /** An {@code array<float>} row as float32 bytes. */
    public static byte[] packFloats(ArrayData row, String column) {
        int n = row.numElements();
        if (LITTLE && row instanceof UnsafeArrayData) {
            UnsafeArrayData data = (UnsafeArrayData) row;
            Object base = data.getBaseObject();
            long offset = data.getBaseOffset();
            int header = (int) UnsafeArrayData.calculateHeaderPortionInBytes(n);
            for (int word = 8; word < header; word += 8) {
                if (Platform.getLong(base, offset + word) != 0) {
                    throw nullValue(column, firstNull(row), n);
                }
            }
            byte[] out = new byte[n * 4];
            Platform.copyMemory(base, offset + header, out, Platform.BYTE_ARRAY_OFFSET, n * 4L);
            return out;
        }
        ByteBuffer out = ByteBuffer.allocate(n * 4).order(ByteOrder.LITTLE_ENDIAN);
        for (int i = 0; i < n; i++) {
            if (row.isNullAt(i)) {
                throw nullValue(column, i, n);
            }
            out.putFloat(row.getFloat(i));
        }
        return out.array();
    }

    /** An {@code array<double>} row as float32 bytes (each value rounded to float32, as a cast would). */
    public static byte[] packDoubles(ArrayData row, String column) {
        int n = row.numElements();
        float[] values = new float[n];
        for (int i = 0; i < n; i++) {
            if (row.isNullAt(i)) {
                throw nullValue(column, i, n);
            }
            values[i] = (float) row.getDouble(i);
        }
        return floatBytes(values);
    }

    /** An MLlib vector row (its SQL form: type 0 sparse or 1 dense, size, indices, values) as float32 bytes. */
    public static byte[] packVector(InternalRow row, String column) {
        ArrayData values = row.getArray(3);
        if (row.getByte(0) == 1) {
            return packDoubles(values, column);
        }
        int size = row.getInt(1);
        ArrayData indices = row.getArray(2);
        float[] dense = new float[size];
        for (int k = 0; k < indices.numElements(); k++) {
            int index = indices.getInt(k);
            if (index < 0 || index >= size) {
                throw new IllegalArgumentException("column '" + column + "' holds a sparse vector of size " + size
                    + " with an index " + index + " outside it");
            }
            dense[index] = (float) values.getDouble(k);
        }
        return floatBytes(dense);
    }

    static byte[] floatBytes(float[] values) {
        ByteBuffer out = ByteBuffer.allocate(values.length * 4).order(ByteOrder.LITTLE_ENDIAN);
        out.asFloatBuffer().put(values);
        return out.array();
    }

    static int firstNull(ArrayData row) {
        for (int i = 0; i < row.numElements(); i++) {
            if (row.isNullAt(i)) {
                return i;
            }
        }
        return -1;
    }

    /** Which packing a column of this type takes ("Floats", "Doubles" or "Vector"); an error for any other. */
    static String kind(DataType type) {
        if (type instanceof ArrayType) {
            DataType element = ((ArrayType) type).elementType();
            if (element.equals(DataTypes.FloatType)) {
                return "Floats";
            }
            if (element.equals(DataTypes.DoubleType)) {
                return "Doubles";
            }
        }
        if (type instanceof UserDefinedType && ((UserDefinedType<?>) type).userClass() != null
                && ((UserDefinedType<?>) type).userClass().getName().equals("org.apache.spark.ml.linalg.Vector")) {
            return "Vector";
        }
        throw new IllegalArgumentException("ember's feature packing takes array<float>, array<double> or an MLlib "
            + "vector, not " + type.simpleString());
    }

    /** {@code name(features, 'column')} -> {@code Pack}. */
    static final class Builder extends AbstractFunction1<Object, Object> implements java.io.Serializable {
        private static final long serialVersionUID = 1L;

        @Override
        public Object apply(Object arguments) {
            scala.collection.Seq<?> args = (scala.collection.Seq<?>) arguments;
            if (args.length() != 2 || !(args.apply(1) instanceof Literal)) {
                throw new IllegalArgumentException("ember's feature packing takes (features, 'column name')");
            }
            Object label = ((Literal) args.apply(1)).value();
            return new Pack((Expression) args.apply(0), String.valueOf(label));
        }
    }

    /** The Catalyst expression: a feature row (any of the kinds above) -> binary float32 bytes. Evaluated
     * without generated code of its own (the packing is one call; whole-stage code calls {@code eval}). */
    public static final class Pack extends Expression implements CodegenFallback, java.io.Serializable {
        private static final long serialVersionUID = 1L;
        private final Expression child;
        private final String column;
        private final scala.collection.immutable.List<Expression> children;
        private transient String kind;  // (the child's kind of packing, found once)

        @SuppressWarnings("unchecked")
        public Pack(Expression child, String column) {
            this.child = child;
            this.column = column;
            this.children = new scala.collection.immutable.$colon$colon<Expression>(child,
                (scala.collection.immutable.List<Expression>) (Object) scala.collection.immutable.Nil$.MODULE$);
        }

        public Expression child() {
            return child;
        }

        public String column() {
            return column;
        }

        @Override
        public scala.collection.immutable.Seq<Expression> children() {
            return children;
        }

        @Override
        public Expression withNewChildrenInternal(scala.collection.immutable.IndexedSeq<Expression> newChildren) {
            return new Pack(newChildren.apply(0), column);
        }

        @Override
        public DataType dataType() {
            return DataTypes.BinaryType;
        }

        @Override
        public boolean nullable() {
            return true;
        }

        @Override
        public Object eval(InternalRow row) {
            Object input = child.eval(row);
            if (input == null) {
                return null;
            }
            if (kind == null) {
                kind = kind(child.dataType());
            }
            if (kind.equals("Floats")) {
                return packFloats((ArrayData) input, column);
            }
            if (kind.equals("Doubles")) {
                return packDoubles((ArrayData) input, column);
            }
            return packVector((InternalRow) input, column);
        }

        @Override
        public ExprCode doGenCode(CodegenContext ctx, ExprCode ev) {
            return CodegenFallback.super.doGenCode(ctx, ev);
        }

        @Override
        public String prettyName() {
            return "ember_pack_features";
        }

        @Override
        public int productArity() {
            return 2;
        }

        @Override
        public Object productElement(int n) {
            if (n == 0) {
                return child;
            }
            if (n == 1) {
                return column;
            }
            throw new IndexOutOfBoundsException(String.valueOf(n));
        }

        @Override
        public boolean canEqual(Object that) {
            return that instanceof Pack;
        }

        @Override
        public boolean equals(Object that) {
            return that instanceof Pack && ((Pack) that).child.equals(child) && ((Pack) that).column.equals(column);
        }

        @Override
        public int hashCode() {
            return child.hashCode() * 31 + column.hashCode();
        }
    }
}
