using ExpertBridge.Native;

namespace ExpertBridge.Native.Tests;

public class HandleTableTests
{
    [Fact]
    public void TryGet_LiveHandle_ReturnsTheObject()
    {
        var table = new HandleTable<string>();
        var h = table.Add("a");

        Assert.Equal(HandleTable<string>.Lookup.Live, table.TryGet(h, out var item));
        Assert.Equal("a", item);
    }

    [Fact]
    public void TryGet_RemovedHandle_IsStaleEvenAfterTheSlotIsReused()
    {
        var table = new HandleTable<string>();
        var old = table.Add("a");
        Assert.Equal("a", table.Remove(old));

        Assert.Equal(HandleTable<string>.Lookup.Stale, table.TryGet(old, out _));
        var fresh = table.Add("b");

        Assert.NotEqual(old, fresh);
        Assert.Equal(HandleTable<string>.Lookup.Stale, table.TryGet(old, out var item));
        Assert.Null(item);
        Assert.Equal(HandleTable<string>.Lookup.Live, table.TryGet(fresh, out var b));
        Assert.Equal("b", b);
    }

    [Fact]
    public void TryGet_ZeroOrMadeUpHandle_IsNullOrUnknown()
    {
        var table = new HandleTable<string>();
        table.Add("a");

        Assert.Equal(HandleTable<string>.Lookup.Null, table.TryGet(0, out _));
        Assert.Equal(HandleTable<string>.Lookup.Unknown, table.TryGet(0xdead_beef_0000_0001UL, out _));
        Assert.Equal(HandleTable<string>.Lookup.Unknown, table.TryGet(12345, out _));
        Assert.Null(table.Remove(0));
    }

    [Fact]
    public void Add_ManyConcurrently_GivesDistinctLiveHandles()
    {
        var table = new HandleTable<object>();
        var handles = new ulong[4000];

        Parallel.For(0, handles.Length, i => handles[i] = table.Add(new object()));
        Parallel.For(0, handles.Length / 2, i => table.Remove(handles[i]));

        Assert.Equal(handles.Length, handles.Distinct().Count());
        Assert.All(handles[..2000], h => Assert.Equal(HandleTable<object>.Lookup.Stale, table.TryGet(h, out _)));
        Assert.All(handles[2000..], h => Assert.Equal(HandleTable<object>.Lookup.Live, table.TryGet(h, out _)));
    }
}
