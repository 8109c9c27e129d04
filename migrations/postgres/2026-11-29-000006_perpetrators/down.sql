DROP TABLE perpetrators;
