//! Values going into and coming out of queries.

/// A value as a query sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ValueRef<'a> {
    /// SQL NULL.
    Null,
    /// A 64-bit integer (booleans are 0 and 1).
    Int(i64),
    /// UTF-8 text.
    Text(&'a str),
    /// A byte string.
    Blob(&'a [u8]),
    /// A type this layer does not read; names it.
    Other(&'static str),
}

impl ValueRef<'_> {
    /// The type's name for messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::Null => "NULL",
            Self::Int(_) => "an integer",
            Self::Text(_) => "text",
            Self::Blob(_) => "bytes",
            Self::Other(t) => t,
        }
    }
}

/// An owned value (for copying rows between stores).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Value {
    /// SQL NULL.
    Null,
    /// A 64-bit integer.
    Int(i64),
    /// UTF-8 text.
    Text(String),
    /// A byte string.
    Blob(Vec<u8>),
}

impl Value {
    /// An owned copy of `v`; `None` for a type this layer does not read.
    pub fn from_ref(v: ValueRef<'_>) -> Option<Self> {
        Some(match v {
            ValueRef::Null => Self::Null,
            ValueRef::Int(n) => Self::Int(n),
            ValueRef::Text(t) => Self::Text(t.to_owned()),
            ValueRef::Blob(b) => Self::Blob(b.to_vec()),
            ValueRef::Other(_) => return None,
        })
    }
}

impl Param for Value {
    fn value(&self) -> ValueRef<'_> {
        match self {
            Self::Null => ValueRef::Null,
            Self::Int(n) => ValueRef::Int(*n),
            Self::Text(t) => ValueRef::Text(t),
            Self::Blob(b) => ValueRef::Blob(b),
        }
    }
}

/// What may be bound as a query parameter.
pub trait Param {
    /// The value to bind.
    fn value(&self) -> ValueRef<'_>;
}

impl<T: Param + ?Sized> Param for &T {
    fn value(&self) -> ValueRef<'_> {
        (**self).value()
    }
}

impl Param for i64 {
    fn value(&self) -> ValueRef<'_> {
        ValueRef::Int(*self)
    }
}

macro_rules! small_int_param {
    ($($t:ty),*) => {$(
        impl Param for $t {
            fn value(&self) -> ValueRef<'_> {
                ValueRef::Int(i64::from(*self))
            }
        }
    )*};
}
small_int_param!(i32, u32, i16, u16, u8, bool);

impl Param for str {
    fn value(&self) -> ValueRef<'_> {
        ValueRef::Text(self)
    }
}

impl Param for String {
    fn value(&self) -> ValueRef<'_> {
        ValueRef::Text(self)
    }
}

impl Param for [u8] {
    fn value(&self) -> ValueRef<'_> {
        ValueRef::Blob(self)
    }
}

impl<const N: usize> Param for [u8; N] {
    fn value(&self) -> ValueRef<'_> {
        ValueRef::Blob(self)
    }
}

impl Param for Vec<u8> {
    fn value(&self) -> ValueRef<'_> {
        ValueRef::Blob(self)
    }
}

impl<T: Param> Param for Option<T> {
    fn value(&self) -> ValueRef<'_> {
        self.as_ref().map_or(ValueRef::Null, Param::value)
    }
}

/// What a column may be read as.
pub trait FromValue: Sized {
    /// The type's name for messages.
    const EXPECTED: &'static str;
    /// The value, or `None` when the column holds another type.
    fn from_value(v: ValueRef<'_>) -> Option<Self>;
}

impl FromValue for i64 {
    const EXPECTED: &'static str = "an integer";
    fn from_value(v: ValueRef<'_>) -> Option<Self> {
        match v {
            ValueRef::Int(n) => Some(n),
            _ => None,
        }
    }
}

macro_rules! small_int_value {
    ($($t:ty),*) => {$(
        impl FromValue for $t {
            const EXPECTED: &'static str = concat!("an integer that fits ", stringify!($t));
            fn from_value(v: ValueRef<'_>) -> Option<Self> {
                match v {
                    ValueRef::Int(n) => <$t>::try_from(n).ok(),
                    _ => None,
                }
            }
        }
    )*};
}
small_int_value!(i32, u32, i16, u16, u8, u64, usize);

impl FromValue for bool {
    const EXPECTED: &'static str = "a boolean";
    fn from_value(v: ValueRef<'_>) -> Option<Self> {
        match v {
            ValueRef::Int(0) => Some(false),
            ValueRef::Int(1) => Some(true),
            _ => None,
        }
    }
}

impl FromValue for String {
    const EXPECTED: &'static str = "text";
    fn from_value(v: ValueRef<'_>) -> Option<Self> {
        match v {
            ValueRef::Text(s) => Some(s.to_owned()),
            _ => None,
        }
    }
}

impl FromValue for Vec<u8> {
    const EXPECTED: &'static str = "bytes";
    fn from_value(v: ValueRef<'_>) -> Option<Self> {
        match v {
            ValueRef::Blob(b) => Some(b.to_vec()),
            _ => None,
        }
    }
}

impl<T: FromValue> FromValue for Option<T> {
    const EXPECTED: &'static str = T::EXPECTED;
    fn from_value(v: ValueRef<'_>) -> Option<Self> {
        match v {
            ValueRef::Null => Some(None),
            v => T::from_value(v).map(Some),
        }
    }
}
