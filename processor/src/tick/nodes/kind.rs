//! The kinds of node (`|from()`, `|sum()`, ...), by TICKscript method and by Kapacitor's name.

/// The aggregate functions (`|sum('field')`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AggregateFn {
    Sum,
    Mean,
    Count,
    Min,
    Max,
    Median,
    Spread,
    Stddev,
}

impl AggregateFn {
    pub fn method(self) -> &'static str {
        match self {
            AggregateFn::Sum => "sum",
            AggregateFn::Mean => "mean",
            AggregateFn::Count => "count",
            AggregateFn::Min => "min",
            AggregateFn::Max => "max",
            AggregateFn::Median => "median",
            AggregateFn::Spread => "spread",
            AggregateFn::Stddev => "stddev",
        }
    }
}

/// The kind of a node, without its properties.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NodeKind {
    Stream,
    From,
    Where,
    GroupBy,
    Derivative,
    Aggregate(AggregateFn),
    MovingAverage,
    Eval,
    Window,
    Log,
    HttpOut,
    InfluxDbOut,
    K8sAutoscale,
}

/// The node methods accepted after `|`, for error messages.
pub const SUPPORTED_NODES: &str = "from, where, groupBy, derivative, sum, mean, count, min, max, median, spread, stddev, movingAverage, eval, window, log, httpOut, influxDBOut, k8sAutoscale";

impl NodeKind {
    /// The kind created by `|method(...)`.
    pub fn from_method(method: &str) -> Option<NodeKind> {
        Some(match method {
            "from" => NodeKind::From,
            "where" => NodeKind::Where,
            "groupBy" => NodeKind::GroupBy,
            "derivative" => NodeKind::Derivative,
            "sum" => NodeKind::Aggregate(AggregateFn::Sum),
            "mean" => NodeKind::Aggregate(AggregateFn::Mean),
            "count" => NodeKind::Aggregate(AggregateFn::Count),
            "min" => NodeKind::Aggregate(AggregateFn::Min),
            "max" => NodeKind::Aggregate(AggregateFn::Max),
            "median" => NodeKind::Aggregate(AggregateFn::Median),
            "spread" => NodeKind::Aggregate(AggregateFn::Spread),
            "stddev" => NodeKind::Aggregate(AggregateFn::Stddev),
            "movingAverage" => NodeKind::MovingAverage,
            "eval" => NodeKind::Eval,
            "window" => NodeKind::Window,
            "log" => NodeKind::Log,
            "httpOut" => NodeKind::HttpOut,
            "influxDBOut" => NodeKind::InfluxDbOut,
            "k8sAutoscale" => NodeKind::K8sAutoscale,
            _ => return None,
        })
    }

    /// The TICKscript method that creates the node.
    pub fn method(self) -> &'static str {
        match self {
            NodeKind::Stream => "stream",
            NodeKind::From => "from",
            NodeKind::Where => "where",
            NodeKind::GroupBy => "groupBy",
            NodeKind::Derivative => "derivative",
            NodeKind::Aggregate(f) => f.method(),
            NodeKind::MovingAverage => "movingAverage",
            NodeKind::Eval => "eval",
            NodeKind::Window => "window",
            NodeKind::Log => "log",
            NodeKind::HttpOut => "httpOut",
            NodeKind::InfluxDbOut => "influxDBOut",
            NodeKind::K8sAutoscale => "k8sAutoscale",
        }
    }

    /// Kapacitor's name prefix for the node (`groupby`, `k8s_autoscale`, `movingAverage`); the
    /// node's name is this plus its index in creation order (`groupby3`).
    pub fn desc(self) -> &'static str {
        match self {
            NodeKind::GroupBy => "groupby",
            NodeKind::HttpOut => "http_out",
            NodeKind::InfluxDbOut => "influxdb_out",
            NodeKind::K8sAutoscale => "k8s_autoscale",
            other => other.method(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kapacitor_node_name_prefixes() {
        assert_eq!(NodeKind::GroupBy.desc(), "groupby");
        assert_eq!(NodeKind::K8sAutoscale.desc(), "k8s_autoscale");
        assert_eq!(NodeKind::MovingAverage.desc(), "movingAverage");
        assert_eq!(NodeKind::InfluxDbOut.desc(), "influxdb_out");
        assert_eq!(NodeKind::HttpOut.desc(), "http_out");
        assert_eq!(NodeKind::Aggregate(AggregateFn::Sum).desc(), "sum");
    }

    #[test]
    fn every_supported_method_round_trips() {
        for method in SUPPORTED_NODES.split(", ") {
            let kind = NodeKind::from_method(method).unwrap();
            assert_eq!(kind.method(), method);
        }
        assert_eq!(NodeKind::from_method("alert"), None);
    }
}
